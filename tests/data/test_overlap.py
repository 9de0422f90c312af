"""The contamination guard's rule: held-out prompts that repeat or nearly repeat a training prompt, found exactly."""
from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from studio.data.dataset import load_source, prepare_splits
from studio.data.overlap import (MAX_WORDS, NEAR_THRESHOLD, Overlap, find_overlaps, normalise, overlap_flags,
                                 overlap_line, prompt_words, shingles)
from studio.data.samples import SAMPLES
from studio.examples import Example
from studio.settings import DataSettings

MESSY = Path(__file__).parent / "messy"
LONG = ("Write a short, friendly email to a colleague asking whether the quarterly budget review can move from "
        "Tuesday afternoon to Thursday morning, because the finance team needs two more days to close the books")


def ex(instruction: str, input: str = "", **kw) -> Example:
    return Example(instruction=instruction, output="answer", input=input, **kw)


def test_normalising_drops_case_punctuation_and_spacing():
    assert normalise("  What's 2+2?\n\tAnswer  IN words!! ") == "what s 2 2 answer in words"
    assert normalise("snake_case, déjà-vu") == "snake case déjà vu"


def test_shingles_are_word_trigrams_and_a_short_prompt_is_one_shingle():
    assert shingles(("a", "b", "c", "d")) == {("a", "b", "c"), ("b", "c", "d")}
    assert shingles(("git", "helper")) == {("git", "helper")} and shingles(()) == set()


def test_an_exact_repeat_after_normalising_is_exact():
    found = find_overlaps([ex("Other question?"), ex("What is the CAPITAL of France?")],
                          [ex("what is the capital of france"), ex("Something else entirely, nothing alike.")])
    assert found == [Overlap(test_index=0, train_index=1, reason="exact", score=1.0)]


def test_one_word_edited_in_a_long_prompt_is_near_but_a_templated_short_one_is_not():
    edited = LONG.replace("Thursday", "Friday")
    [near] = find_overlaps([ex(LONG)], [ex(edited)])
    assert near.reason == "near" and NEAR_THRESHOLD <= near.score < 1.0
    # The built-in samples' kind of prompt: a fixed instruction, a few words that change.
    assert find_overlaps([ex("Convert the text to uppercase.", "road apple cook pie")],
                         [ex("Convert the text to uppercase.", "road apple cook climb")]) == []


def test_the_threshold_is_the_jaccard_of_the_shingle_sets():
    words = [f"w{i}" for i in range(12)]  # 10 shingles; the last word changed shares 9 of 11
    train, test = ex(" ".join(words)), ex(" ".join(words[:-1] + ["other"]))
    assert find_overlaps([train], [test], threshold=9 / 11)[0].score == pytest.approx(9 / 11)
    assert find_overlaps([train], [test], threshold=9 / 11 + 1e-9) == []


def test_each_held_out_prompt_is_reported_once_with_its_most_alike_training_prompt():
    edited, closer = LONG.replace("Thursday", "Friday"), LONG.replace("books", "accounts")
    found = find_overlaps([ex(edited), ex("unrelated"), ex(closer), ex(LONG.upper())], [ex(LONG)])
    assert found == [Overlap(0, 3, "exact", 1.0)]
    [best] = find_overlaps([ex(edited), ex(closer)], [ex(LONG)])
    assert best.train_index == 1  # an edit at the end changes fewer shingles than one in the middle


def test_earlier_turns_count_and_the_system_message_does_not():
    history = (("user", "What is 45 plus 25?"), ("assistant", "45 plus 25 is 70."))
    other = (("user", "How long is the word skirt?"), ("assistant", "It has 5 letters."))
    assert find_overlaps([ex("And subtract 83?", history=history)], [ex("And subtract 83?", history=other)]) == []
    [same] = find_overlaps([ex("And subtract 83?", history=history, system="Be brief.")],
                           [ex("and subtract 83", history=history, system="You are a pirate.")])
    assert same.reason == "exact"


def test_a_long_prompt_is_compared_on_its_two_ends():
    long_history = (("user", "Please review this log. " + "intro " * 5000), ("assistant", LONG))
    words = prompt_words(ex("Thanks, and the summary?", history=long_history))
    assert len(words) == MAX_WORDS and words[:4] == ("please", "review", "this", "log")
    assert words[-4:] == ("thanks", "and", "the", "summary")
    # Two different questions above the same long pasted traceback are different prompts.
    trace = " ".join(f"frame{i} in module{i}.py line {i}" for i in range(200))
    assert find_overlaps([ex(f"Same error again, please revise the code. {trace}")],
                         [ex(f"What is the dimensionality of the edge attributes here? {trace}")]) == []


def test_flags_and_the_data_tab_line():
    assert overlap_flags([Overlap(1, 0, "near", 0.9), Overlap(2, 5, "exact", 1.0)], 4) == ["", "near", "exact", ""]
    assert overlap_line(0) == ""
    assert overlap_line(1) == "1 held-out prompt looks like a training prompt (left out of the headline)."
    assert overlap_line(3) == "3 held-out prompts look like training prompts (left out of the headline)."
    assert overlap_line(3, included=True).endswith("(counted in the headline).")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_no_built_in_sample_has_a_held_out_prompt_that_repeats_a_training_prompt(name):
    # The demos' figures stay as they were: nothing is left out of their headlines.
    spec = f"sample:{name}"
    assert prepare_splits(load_source(spec), DataSettings(dataset=spec)).near_duplicates == []


def test_splits_report_near_duplicates_without_moving_any_row():
    rows = [ex(f"Question number {i} about topic {i * 7} in some detail", f"context {i}") for i in range(40)]
    rows[3], rows[30] = ex(LONG), ex(LONG.replace("Thursday", "Friday"))  # unshuffled, the last 20 are held out
    loaded = type("Loaded", (), {"examples": rows, "n_rows": 40, "fixed_test": None})()
    data = DataSettings(shuffle=False, test_fraction=0.5)
    splits = prepare_splits(loaded, data)
    assert (splits.train, splits.test) == (rows[:20], rows[20:])
    [found] = splits.near_duplicates
    assert (found.test_index, found.train_index, found.reason) == (10, 3, "near")
    again = prepare_splits(loaded, data)
    assert (again.train, again.test, again.counts) == (splits.train, splits.test, splits.counts)


def test_a_sample_with_a_fixed_test_split_keeps_dropping_exact_leaks_and_reports_the_rest():
    # prepare_splits already drops training rows whose prompt is exactly a held-out one; a repeat that differs in
    # case or punctuation stays in training and is reported here instead.
    test = [ex(LONG), ex("Another held-out question with enough words in it")]
    train = [ex(LONG), ex(LONG.lower() + "!"), *(ex(f"Training row {i} on its own subject") for i in range(5))]
    loaded = type("Loaded", (), {"examples": train, "n_rows": 9, "fixed_test": test})()
    splits = prepare_splits(loaded, DataSettings(shuffle=False))
    assert splits.counts["dropped_overlap"] == 1 and len(splits.train) == 6
    [repeat] = splits.near_duplicates
    assert (repeat.test_index, repeat.reason) == (0, "exact") and splits.train[repeat.train_index].instruction.endswith("!")


def test_real_files_templated_questions_are_not_flagged_but_a_pasted_copy_is():
    # booksql: "How much open credit does customer Karen Brown" vs "... Karen Bonilla" (0.71): a new question.
    loaded = load_source(str(MESSY / "booksql_sample.csv"))
    splits = prepare_splits(loaded, DataSettings(dataset="booksql"))
    assert splits.near_duplicates == []
    # HumanEval: a held-out prompt pasted back into training, its indentation and case changed, is an exact repeat;
    # with a word changed as well, a near one.
    humaneval = load_source(str(MESSY / "HumanEval.jsonl.gz")).examples
    held_out, rest = humaneval[:10], humaneval[10:]
    prompt = held_out[4].instruction  # mean_absolute_deviation, a docstring of about 50 words
    pasted = Example(instruction=prompt.replace("    ", "\t").replace("Mean Absolute", "mean absolute"), output="")
    found = find_overlaps([*rest, pasted], held_out)
    assert [(o.test_index, o.train_index, o.reason) for o in found] == [(4, len(rest), "exact")]
    edited = Example(instruction=prompt.replace("centerpoint", "center point"), output="")
    [near] = find_overlaps([*rest, edited], held_out)
    assert (near.test_index, near.reason) == (4, "near") and near.score < 1.0


def test_thousands_of_rows_are_checked_quickly():
    rng = random.Random(0)
    vocab = [f"word{i}" for i in range(3000)]
    train = [ex(" ".join(rng.choices(vocab, k=rng.randint(5, 120)))) for _ in range(5000)]
    test = [ex(" ".join(rng.choices(vocab, k=rng.randint(5, 120)))) for _ in range(500)]
    test[7] = train[4242]
    started = time.perf_counter()
    found = find_overlaps(train, test)
    assert time.perf_counter() - started < 10  # a generous bound on a busy 2-core machine
    assert [(o.test_index, o.train_index, o.reason) for o in found] == [(7, 4242, "exact")]
