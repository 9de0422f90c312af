"""Paired-bootstrap intervals of the change and per-example win/tie/loss (studio.evaluate.significance)."""
from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from studio.evaluate.change import Change
from studio.evaluate.scoring import score
from studio.evaluate.significance import (
    RESAMPLES,
    paired_bootstrap,
    paired_interval,
    resample_indices,
    win_tie_loss,
)

REFS = ["the quick brown fox jumps", "a b c d e", "one two three four five", "red green blue yellow pink",
        "north south east west up", "alpha beta gamma delta epsilon"]


def bootstrap(refs: list[str], base: list[str], tuned: list[str], **kwargs) -> dict[str, Change]:
    """paired_bootstrap with the per-example scores it needs."""
    return paired_bootstrap(refs, base, tuned, score(refs, base)[1], score(refs, tuned)[1], **kwargs)


def test_interval_is_the_percentile_of_corpus_bleu_recomputed_on_the_same_resamples():
    base = ["the quick fox", "a b c", "one two three four five", "red", "north south", "alpha beta gamma"]
    tuned = ["the quick brown fox jumps", "a b c d e", "one two three four", "red green blue", "north", "alpha"]
    changes = bootstrap(REFS, base, tuned, resamples=200)
    deltas = []
    for rows in resample_indices(len(REFS), 200):  # by hand: sacrebleu on each resampled corpus, same indices
        pick = lambda answers: [answers[i] for i in rows]  # noqa: E731
        deltas.append(sacrebleu.corpus_bleu(pick(tuned), [pick(REFS)]).score
                      - sacrebleu.corpus_bleu(pick(base), [pick(REFS)]).score)
    bleu = changes["bleu"]
    assert (bleu.low, bleu.high) == pytest.approx(tuple(np.percentile(deltas, [2.5, 97.5])))
    assert bleu.base == pytest.approx(sacrebleu.corpus_bleu(base, [REFS]).score)
    assert bleu.delta == pytest.approx(bleu.tuned - bleu.base)
    assert bootstrap(REFS, base, tuned, resamples=200) == changes  # seeded: the same every time
    assert bootstrap(REFS, base, tuned, resamples=200, seed=1)["bleu"] != bleu


def test_exact_match_interval_by_hand_on_two_examples():
    # Example 0 goes from wrong to right, example 1 stays wrong: a resample holds example 0 zero, one or two times
    # (chance 1/4, 1/2, 1/4), so the change is 0, 50 or 100 points and the 95% interval spans 0 to 100.
    refs = ["yes", "no"]
    changes = bootstrap(refs, ["x", "x"], ["yes", "x"])
    exact = changes["exact_match"]
    assert (exact.base, exact.tuned, exact.delta) == (0.0, 50.0, 50.0)
    assert (exact.low, exact.high) == (0.0, 100.0)
    assert exact.verdict == "not significant" and not exact.significant
    counts = (resample_indices(2) == 0).sum(axis=1)
    assert len(counts) == RESAMPLES and 400 < (counts == 1).sum() < 600  # about half hold it once


def test_significant_gain_loss_and_none():
    wrong = ["zzz"] * len(REFS)
    gain = bootstrap(REFS, wrong, REFS)
    assert all(c.verdict == "gain" and c.low > 0 for c in gain.values())
    assert bootstrap(REFS, REFS, wrong)["bleu"].verdict == "loss"
    mixed = REFS[:3] + wrong[3:]  # better on half, worse on the other half
    swapped = wrong[:3] + REFS[3:]
    flat = bootstrap(REFS, mixed, swapped)["bleu"]
    assert flat.low < 0 < flat.high and flat.verdict == "not significant"


def test_too_few_examples_give_no_interval():
    one = bootstrap(["a b c d"], ["x"], ["a b c d"])["bleu"]
    assert one.delta == pytest.approx(100.0) and one.low is None and one.verdict == "no interval"
    assert paired_bootstrap([], [], [], [], []) == {}


def test_win_tie_loss_counts_ties_within_the_shown_precision():
    tally = win_tie_loss([0.0, 10.0, 50.0, 50.0, 20.0, 0.0], [30.0, 10.0, 50.04, 49.96, 5.0, 0.05])
    assert (tally.wins, tally.ties, tally.losses) == (2, 3, 1)


# ---- the per-item interval (the forgetting probe's accuracies) ----

def test_identical_answers_give_a_zero_interval():
    same = [1.0, 0.0, 1.0, 1.0] * 10
    assert paired_interval(same, same) == (0.0, 0.0)


def test_every_item_lost_gives_minus_one():
    assert paired_interval([1.0] * 30, [0.0] * 30) == (-1.0, -1.0)


def test_the_interval_is_paired_and_brackets_the_change():
    base = [1.0] * 40
    tuned = [1.0] * 34 + [0.0] * 6  # 6 of 40 lost: -15 points
    low, high = paired_interval(base, tuned)
    assert low < -0.15 < high < 0  # every resample loses some items: significant
    assert paired_interval(base, tuned) == (low, high)  # seeded: the same every time
    # Unpaired, this change would look like noise; paired, items both models get right add no noise.
    noisy_low, noisy_high = paired_interval([1.0, 0.0] * 20, [0.0, 1.0] * 20)
    assert noisy_low < 0 < noisy_high


def test_interval_needs_matching_items():
    with pytest.raises(ValueError):
        paired_interval([1.0, 0.0], [1.0])
    with pytest.raises(ValueError):
        paired_interval([], [])


def test_the_probe_interval_and_compare_resample_the_same_items():
    refs = REFS * 2
    base, tuned = ["nothing"] * len(refs), refs[:8] + ["nothing"] * (len(refs) - 8)
    exact = bootstrap(refs, base, tuned)["exact_match"]
    low, high = paired_interval([0.0] * len(refs), [1.0] * 8 + [0.0] * (len(refs) - 8))
    assert (exact.low, exact.high) == pytest.approx((100 * low, 100 * high))
