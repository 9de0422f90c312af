"""The project's corpus of messy files (tests/data/messy/): every irregularity of real public data at small size.

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
}


def load(name: str, **kwargs):
    return load_source(str(MESSY / name), keep_truncated=True, **kwargs)


def test_every_fixture_has_its_expectation():
    names = {p.name for p in MESSY.iterdir()}
    assert names == set(EXPECTED) | {"every_output_empty.jsonl"}


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
