"""Streaming conversion: the property that no row-level irregularity ever refuses a file with one usable row,
shape detection on the first rows, and the nothing-usable refusal."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.data import convert
from studio.data.convert import convert_records, records_of
from studio.data.dataset import load_source
from studio.errors import DataError, ShapeError

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROLES = ["user", "assistant", "system", "tool", "human", "gpt", "chatgpt", "bing", "bard", "model", "prompter",
         "wizard", "", None, 3]
text = st.one_of(st.text(max_size=12), st.just(""), st.just("   "))
content = st.one_of(text, st.none(), st.integers(), st.lists(st.fixed_dictionaries({"type": st.just("text"),
                                                                                     "text": text}), max_size=2),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
turn = st.one_of(st.builds(lambda r, c: {"role": r, "content": c}, st.sampled_from(ROLES), content),
                 st.builds(lambda r, c: {"from": r, "value": c}, st.sampled_from(ROLES), content),
                 st.sampled_from(["a string turn", 7, None]))
chat_cell = st.one_of(st.lists(turn, max_size=6), st.just([]), st.none(), st.just("not json"), st.integers())
flat_cell = st.one_of(text, st.none(), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2),
                      st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
GOOD = {"alpaca": {"instruction": "Say hi.", "input": "", "output": "Hi."},
        "messages": {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hi."}]},
        "sharegpt": {"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hi."}]}}


def irregular_row(kind: str) -> st.SearchStrategy:
    """A row of the given shape with any irregularity a real export has."""
    if kind == "alpaca":
        return st.fixed_dictionaries({"instruction": flat_cell}, optional={"input": flat_cell, "output": flat_cell})
    column = "messages" if kind == "messages" else "conversations"
    return st.fixed_dictionaries({column: chat_cell}, optional={"id": st.integers()})


@st.composite
def messy_files(draw) -> tuple[str, str, int]:
    """(file text, suffix, number of records) holding at least one usable row among irregular ones."""
    kind = draw(st.sampled_from(sorted(GOOD)))
    rows: list[object] = draw(st.lists(irregular_row(kind), max_size=8))
    rows.insert(draw(st.integers(0, len(rows))), GOOD[kind])
    suffix = draw(st.sampled_from([".json", ".jsonl"]))
    junk = draw(st.lists(st.sampled_from(["[1, 2]", "42", "\"text\"", "{broken"]), max_size=3))
    if suffix == ".jsonl":
        lines = [json.dumps(r) for r in rows] + junk
        order = draw(st.permutations(range(len(lines))))
        return "\n".join(lines[i] for i in order), suffix, len(lines)
    items = rows + [json.loads(j) for j in junk if j != "{broken"]
    return json.dumps(items), suffix, len(items)


@FAST
@given(file=messy_files(), strict=st.booleans())
def test_row_level_irregularities_never_refuse_a_file_with_a_usable_row(file, strict):
    content, suffix, n_records = file
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"messy{suffix}"
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
        try:
            loaded = load_source(str(path), strict=strict)
        except DataError as exc:  # only strict mode may refuse, and only for an irregular row
            assert strict and "strict mode refuses a file with irregular rows" in str(exc), str(exc)
            return
    s = loaded.summary
    assert s.n_kept >= 1 and s.n_kept == len(loaded.examples)
    assert s.n_rows == n_records == s.n_kept + s.n_skipped
    assert sum(s.skipped.values()) == s.n_skipped and s.line().endswith(".")
    assert all(e.output.strip() for e in loaded.examples)


def test_the_shape_is_detected_on_the_first_rows_and_later_columns_still_listed(monkeypatch):
    monkeypatch.setattr(convert, "DETECT_ROWS", 2)
    rows = [{"instruction": "a", "output": "b"}] * 3 + [{"instruction": "c", "output": "d", "extra": 1}]
    converted = convert_records(records_of(rows), "rows.json")
    assert converted.shape.name == "alpaca" and converted.columns == ["instruction", "output", "extra"]
    assert len(converted.examples) == 4


def test_an_unknown_shape_lists_every_column_for_the_mapping(monkeypatch):
    monkeypatch.setattr(convert, "DETECT_ROWS", 1)
    rows = [{"q": "a", "reply": "b"}, {"q": "c", "reply": "d", "notes": ""}]
    with pytest.raises(ShapeError) as info:
        convert_records(records_of(rows), "rows.json")
    assert info.value.columns == ["q", "reply", "notes"]


def test_nothing_usable_names_the_reasons():
    rows = [{"messages": []}, {"messages": [{"role": "user", "content": "only a question"}]}]
    with pytest.raises(ShapeError, match=r"^Nothing in 'chats.json' can be trained on: all 2 rows were skipped "
                                         r"\(1 no turns, 1 no answer\)\.$"):
        convert_records(records_of(rows), "chats.json")


CSV_GOOD = "Say hi.,Hi.\n"
# A quote that never closes swallows the lines after it until a quote closes a cell by accident; when that
# cell is followed by a delimiter the record parses soundly, so it can only come last here.
CSV_JUNK = ['ase, d",64\n', '"closed"then,x\n', ",\n", "\n", "instruction,output\n",
            "a,b,c,d\n", "only one cell\n", "q,\n", "  ,   \n", "x,y,\n"]
CSV_NOTES = ['"Warning: please do not share this file.",\n', ",\n", "\n", "# exported by a tool\n"]


@st.composite
def messy_csv_files(draw) -> str:
    """A CSV with notes above its header and one usable row among ragged, garbled, blank and repeated-header lines."""
    lines = draw(st.lists(st.sampled_from(CSV_JUNK), max_size=8))
    lines.insert(draw(st.integers(0, len(lines))), CSV_GOOD)
    notes = draw(st.lists(st.sampled_from(CSV_NOTES), max_size=3))
    unclosed = draw(st.sampled_from(["", '"never closed,x\n']))
    return "".join(notes) + "instruction,output\n" + "".join(lines) + unclosed


@FAST
@given(content=messy_csv_files(), strict=st.booleans())
def test_row_level_irregularities_never_refuse_a_csv_with_a_usable_row(content, strict):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "messy.csv"
        path.write_text(content, encoding="utf-8")
        try:
            loaded = load_source(str(path), strict=strict)
        except DataError as exc:  # only strict mode may refuse, and only for an irregular row
            assert strict and "strict mode refuses a file with irregular rows" in str(exc), (content, str(exc))
            return
    s = loaded.summary
    assert loaded.columns == ["instruction", "output"], content
    assert s.n_kept >= 1 and s.n_kept == len(loaded.examples) and s.n_rows == s.n_kept + s.n_skipped
    assert ("Say hi.", "Hi.") in [(e.instruction, e.output) for e in loaded.examples]
    assert all(e.output.strip() and e.instruction != "instruction" for e in loaded.examples)
