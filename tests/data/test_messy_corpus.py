"""The project's corpus of messy files (tests/data/messy/, sources in its README): every irregularity of real public
data at small size, and real files that packages ship.

Each file must load (or be refused, when nothing in it is usable) with exactly the summary counts listed here.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from studio.data.dataset import load_source, prepare_splits
from studio.errors import DataError, ShapeError, TruncatedFileError
from studio.examples import Example
from studio.settings import DataSettings

MESSY = Path(__file__).parent / "messy"

# file -> (shape, rows, kept, repaired per reason, skipped per reason)
EXPECTED = {
    "sharegpt_irregular.json": ("sharegpt", 12, 9,
                                {"leading_assistant": 1, "trailing_user": 1, "role_alias": 3, "empty_turn": 1,
                                 "repeated_role": 1},
                                {"no_turns": 1, "no_answer": 1, "unknown_role": 1}),
    "openai_tools.jsonl": ("messages", 4, 3, {}, {"system_mid_chat": 1}),
    "dolly.jsonl": ("dolly", 3, 2, {}, {"empty_output": 1}),
    "oasst.jsonl": ("oasst", 3, 2, {}, {"no_answer": 1}),
    "alpaca_missing_input.json": ("alpaca", 3, 3, {}, {}),
    "preference.jsonl": ("preference", 4, 3, {}, {"empty_output": 1}),
    "bad_lines.jsonl": ("alpaca", 8, 3, {}, {"empty_output": 1, "nested_value": 1, "not_object": 2, "bad_json": 1}),
    "ragged.csv": ("alpaca", 5, 3, {"short_row": 1, "extra_empty_cells": 1}, {"empty_output": 1, "long_row": 1}),
    "truncated_array.json": ("alpaca", 3, 3, {}, {}),
    "hf_doc_qa_eval.csv": ("common_names", 66, 64, {"whitespace": 64}, {"empty_output": 1, "garbled_row": 1}),
    "booksql_sample.csv": ("common_names", 99, 99, {"whitespace": 46}, {}),
    "scientist_biographies.csv": ("common_names", 5, 5, {}, {}),
    "HumanEval.jsonl.gz": ("common_names", 164, 164, {"whitespace": 164}, {}),
}
# Files that need a mapping (or cannot be trained on at all): their refusal, then the mapping that loads them.
REFUSED = {"every_output_empty.jsonl", "freshqa_excerpt.csv", "persistbench_questions.jsonl"}


def load(name: str, **kwargs):
    return load_source(str(MESSY / name), keep_truncated=True, **kwargs)


def test_every_fixture_has_its_expectation():
    names = {p.name for p in MESSY.iterdir()} - {"README.md"}
    assert names == set(EXPECTED) | REFUSED
    sources = (MESSY / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in sources for name in names)  # every file's source is named


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_summary_counts(name):
    shape, rows, kept, repaired, skipped = EXPECTED[name]
    loaded = load(name)
    s = loaded.summary
    assert (loaded.shape.name, s.n_rows, s.n_kept, s.repaired, s.skipped) == (shape, rows, kept, repaired, skipped)
    assert len(loaded.examples) == kept and s.n_rows == s.n_kept + s.n_skipped
    for key, _, count, notes in s.reasons():  # every reason shows real rows, each with a sentence-ready detail
        assert 1 <= len(notes) <= min(count, 3)
        assert all(n.row >= 1 and n.detail and n.text for n in notes)
    line = s.line()
    assert line.startswith(("Kept all", "Kept ")) and line.endswith(".") and "\n" not in line


def test_the_sharegpt_summary_line_reads_as_the_issue_asks():
    line = load("sharegpt_irregular.json").summary.line()
    assert line.startswith("Kept 9 of 12 rows: 1 repaired (leading assistant turn), 1 repaired (trailing user turn), "
                           "3 repaired (role alias)")
    assert "1 skipped (no turns)" in line and line.endswith("; the file is cut off after its 12 complete records.")


@pytest.mark.parametrize("name, complete", [("sharegpt_irregular.json", 12), ("truncated_array.json", 3)])
def test_a_file_cut_mid_record_offers_its_complete_records(name, complete):
    with pytest.raises(TruncatedFileError) as info:
        load_source(str(MESSY / name))
    assert info.value.complete == complete
    assert f"after {complete} complete records; keep those records or fix the file." in str(info.value)
    assert load(name).summary.truncated_after == complete


def test_nothing_usable_is_refused_with_the_reason():
    with pytest.raises(ShapeError) as info:
        load("every_output_empty.jsonl")
    assert str(info.value) == ("Nothing in 'every_output_empty.jsonl' can be trained on: all 20 rows were skipped "
                               "(20 empty output); check which column holds the output.")
    assert info.value.columns == ["instruction", "output"]


@pytest.mark.parametrize("name", ["sharegpt_irregular.json", "bad_lines.jsonl", "ragged.csv"])
def test_strict_refuses_the_first_irregular_row(name):
    with pytest.raises(DataError, match=r"^Row \d+ .*; strict mode refuses a file with irregular rows"):
        load(name, strict=True)


def test_strict_accepts_a_clean_file():
    assert load("alpaca_missing_input.json", strict=True).summary.clean


def test_dolly_context_is_the_input_and_alpaca_without_input_key_loads():
    assert load("dolly.jsonl").examples[1] == Example(
        "Summarise the passage.", "The Nile is Africa's longest river.", input="The Nile is the longest river in Africa.")
    assert [e.input for e in load("alpaca_missing_input.json").examples] == ["apple", "", "stone"]


def test_openai_tool_chat_keeps_tool_turns_and_calls():
    first = load("openai_tools.jsonl").examples[0]
    assert first.system == "You can call tools." and first.prompt_role == "tool"
    assert first.history[0] == ("user", "Weather in Oslo?") and "get_weather" in first.history[1][1]
    assert first.output == "It is 4 °C in Oslo."


def test_oasst_follows_the_best_ranked_reply():
    loaded = load("oasst.jsonl")
    egg = loaded.examples[0]
    assert egg.history == (("user", "How do I boil an egg?"),
                           ("assistant", "Simmer it for 9 minutes, then cool it in cold water."))
    assert (egg.instruction, egg.output) == ("And a soft one?", "About 6 minutes.")
    assert loaded.summary.message_rows == 8 and "grouped from 8 message rows" in loaded.summary.line()


def test_chat_shaped_data_recommends_the_chat_template():
    assert load("sharegpt_irregular.json").recommended_template == "chat"
    assert load("oasst.jsonl").recommended_template == "chat"
    assert load("dolly.jsonl").recommended_template == ""


def test_messy_chats_split_and_train_ready(tmp_path):
    path = shutil.copy(MESSY / "sharegpt_irregular.json", tmp_path / "chats.json")
    splits = prepare_splits(load_source(str(path), keep_truncated=True), DataSettings(seed=1))
    assert splits.counts["train"] + splits.counts["test"] == 9


# ---- real files that packages ship (sources in messy/README.md) ---------------------------------------------------

def test_a_header_below_notes_is_found_and_never_an_example():
    with pytest.raises(ShapeError) as info:
        load("freshqa_excerpt.csv")
    message = str(info.value)  # the real header's names, not column_2 ... column_20
    assert "'question'" in message and "'answer_0', 'answer_1'" in message and "could hold it" in message
    assert info.value.columns[:3] == ["id", "split", "question"] and "column_2" not in info.value.columns
    loaded = load("freshqa_excerpt.csv", column_map={"instruction": "question", "output": "answer_0"})
    s = loaded.summary
    assert (s.n_rows, s.n_kept) == (24, 24) and "skipped 2 lines above the header" in s.line()
    assert loaded.examples[0].instruction == "What is the name of the first animal to land on the moon?"
    assert all(e.instruction != "question" for e in loaded.examples)


def test_a_row_garbled_by_a_stray_quote_is_skipped_with_its_line():
    loaded = load("hf_doc_qa_eval.csv")
    assert loaded.shape.mapping == {"instruction": "question", "output": "expected_answer"}
    note = loaded.summary.notes["garbled_row"][0]
    assert note.detail.startswith("(line 102) has broken quoting") and note.text.startswith('ase, d",64')
    assert all(e.output != ' d"' and e.instruction != "ase" for e in loaded.examples)
    # Questions end in a newline in this file: trimmed, so no prompt shows a stray blank line.
    assert all(e.instruction == e.instruction.strip() for e in loaded.examples)
    assert "1 skipped (garbled CSV row)" in loaded.summary.line()
    with pytest.raises(DataError, match=r"^Row 51 \(line 102\) has broken quoting .*; strict mode refuses"):
        load("hf_doc_qa_eval.csv", strict=True)


def test_capitalised_query_and_sql_columns_are_found_by_their_common_names():
    loaded = load("booksql_sample.csv")
    assert loaded.shape.mapping == {"instruction": "Query", "output": "SQL"}
    assert loaded.shape.reason == "Columns taken by their common names: 'Query' as instruction, 'SQL' as output."
    first = loaded.examples[0].output
    assert first.startswith("select sum(open_balance)") and not first.endswith(" ")


def test_gzipped_json_lines_load_and_code_keeps_its_indentation():
    loaded = load("HumanEval.jsonl.gz")
    assert loaded.shape.mapping == {"instruction": "prompt", "output": "canonical_solution"}
    first = loaded.examples[0]
    assert first.instruction.startswith("from typing import List") and first.instruction.endswith('"""')
    assert first.output.startswith("    for idx, elem in enumerate(numbers):") and first.output.endswith("return False")


def test_questions_without_answers_are_refused_in_one_sentence_naming_the_columns():
    with pytest.raises(ShapeError) as info:
        load("persistbench_questions.jsonl")
    assert str(info.value) == (
        "No known dataset shape fits the columns 'query', 'memories', 'memory_domain', 'query_domain' and "
        "'failure_type': none looks like an answer (output, answer, expected_answer, response, ...), and training "
        "needs the answer the model should learn to give.")
