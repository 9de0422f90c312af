"""The built-in probe's items: the files are what the generator writes, and every item has exactly one right answer."""
from __future__ import annotations

import json
import re

import pytest

from studio.evaluate.probe_items import PROBE_DIR, build_items, jsonl

ITEMS = build_items()
ALL = [(category, row) for category, rows in ITEMS.items() for row in rows]


def test_files_in_the_repo_are_what_the_generator_writes():
    for category, rows in ITEMS.items():
        assert (PROBE_DIR / f"{category}.jsonl").read_text(encoding="utf-8") == jsonl(rows), \
            f"{category}.jsonl is stale: run python -m studio.evaluate.probe_items"
    assert {p.stem for p in PROBE_DIR.glob("*.jsonl")} == set(ITEMS)


def test_size_of_the_probe():
    assert 150 <= len(ALL) <= 300
    assert all(len(rows) >= 30 for rows in ITEMS.values())


@pytest.mark.parametrize("category,row", ALL, ids=[row["id"] for _, row in ALL])
def test_each_item_has_four_different_choices_and_one_answer(category, row):
    choices = row["choices"]
    assert len(choices) == 4 and len({c.strip().lower() for c in choices}) == 4
    assert 0 <= row["answer"] < 4 and row["question"].strip() == row["question"]
    assert all(c and c.strip() == c for c in choices)  # lm-eval's target_delimiter adds the space


def test_no_duplicate_items_or_ids():
    ids = [row["id"] for _, row in ALL]
    assert len(set(ids)) == len(ids)
    keys = [(row["question"], row["choices"][row["answer"]]) for _, row in ALL]
    assert len(set(keys)) == len(keys)


def _expected(question: str) -> int:
    """The right answer, computed again from the question text."""
    if found := re.fullmatch(r"(\d) ([+-]) (\d) =", question):
        a, op, b = found.groups()
        return int(a) + int(b) if op == "+" else int(a) - int(b)
    a, b, c = map(int, re.fullmatch(r"(\d), (\d), (\d),", question).groups())
    assert b - a == c - b != 0, question  # an arithmetic sequence
    return c + (c - b)


def test_arithmetic_answers_are_computed_right():
    for row in ITEMS["arithmetic"]:
        values = [int(c) for c in row["choices"]]
        expected = _expected(row["question"])
        assert values[row["answer"]] == expected and values.count(expected) == 1, row


def test_correct_answers_are_not_always_in_the_same_place():
    positions = [row["answer"] for _, row in ALL]
    assert all(positions.count(i) > len(ALL) / 8 for i in range(4))


def test_rows_are_plain_json_lines():
    for path in PROBE_DIR.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            assert set(json.loads(line)) == {"id", "question", "choices", "answer"}
