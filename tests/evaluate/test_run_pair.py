"""Two runs side by side (studio.evaluate.run_pair): the paired difference on the same rows, none on different ones."""
from __future__ import annotations

import dataclasses

from studio.evaluate.run_pair import pair_runs
from tests.builders import sample_comparison


def test_the_same_rows_in_any_order_give_a_paired_difference_with_an_interval():
    a, b = sample_comparison(), sample_comparison()
    b.rows = list(reversed(b.rows))
    pair = pair_runs(a, b)
    assert pair.same_rows and pair.shared == 2
    bleu = pair.changes["bleu"]
    assert bleu.delta == 0.0 and bleu.low == 0.0 and bleu.high == 0.0  # identical tuned answers: no difference
    assert set(pair.changes) == {"bleu", "chrf", "rouge_l", "exact_match"}
    assert "same 2 held-out examples" in pair.rows_note


def test_a_better_second_run_shows_a_positive_difference():
    a, b = sample_comparison(), sample_comparison()
    b.rows = [dataclasses.replace(r, tuned=r.reference, tuned_bleu=100.0, tuned_exact=True) for r in b.rows]
    pair = pair_runs(a, b)
    assert pair.changes["exact_match"].delta == 50.0 and pair.changes["chrf"].delta > 0


def test_different_rows_get_no_interval_and_say_so():
    a, b = sample_comparison(), sample_comparison()
    b.rows = b.rows[:1]
    pair = pair_runs(a, b)
    assert not pair.same_rows and pair.shared == 1
    assert pair.changes["bleu"].low is None and pair.changes["bleu"].delta == b.tuned.bleu - a.tuned.bleu
    assert pair.rows_note == ("The runs were compared on different held-out examples (2 and 1, 1 in common), so their "
                              "scores are not directly comparable and the difference has no interval.")
