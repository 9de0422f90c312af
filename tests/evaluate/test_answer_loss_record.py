"""The answer-loss record (studio.evaluate.answer_loss_record): corpus loss, perplexity, paired interval, counts."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from studio.evaluate.answer_loss_record import SAME_MARGIN, AnswerLoss, ExampleLoss, summarise
from studio.evaluate.significance import RESAMPLES, resample_indices


def losses(base: list[float], tuned: list[float], tokens: list[int] | None = None) -> list[ExampleLoss]:
    tokens = tokens or [10] * len(base)
    return [ExampleLoss(i, n, b, t) for i, (n, b, t) in enumerate(zip(tokens, base, tuned))]


def test_corpus_loss_is_token_weighted_and_perplexity_its_exp():
    record = summarise(losses([2.0, 1.0], [1.0, 1.0], tokens=[30, 10]))
    assert record.loss.base == pytest.approx((2.0 * 30 + 1.0 * 10) / 40) and record.loss.tuned == 1.0
    assert record.loss.delta == pytest.approx(1.0 - 1.75)
    assert record.perplexity.base == pytest.approx(math.exp(1.75)) and record.perplexity.tuned == pytest.approx(math.e)
    assert record.perplexity.delta == pytest.approx(math.e - math.exp(1.75))


def test_the_interval_is_the_paired_bootstrap_over_the_shared_resamples():
    rng = np.random.default_rng(0)
    base = list(rng.uniform(1.5, 2.5, 24))
    tuned = [b - 0.4 + d for b, d in zip(base, rng.normal(0, 0.1, 24))]
    tokens = list(rng.integers(5, 60, 24))
    record = summarise(losses(base, tuned, [int(t) for t in tokens]))
    # The same computation by hand, one resample at a time.
    b, t, n = (np.array(v, dtype=float) for v in (base, tuned, tokens))
    deltas = [(t[rows] * n[rows]).sum() / n[rows].sum() - (b[rows] * n[rows]).sum() / n[rows].sum()
              for rows in resample_indices(24)]
    assert len(deltas) == RESAMPLES
    assert (record.loss.low, record.loss.high) == pytest.approx(tuple(np.percentile(deltas, [2.5, 97.5])))
    assert record.loss.low <= record.loss.delta <= record.loss.high < 0 and record.verdict == "lower"
    assert record.perplexity.low <= record.perplexity.delta <= record.perplexity.high < 0
    assert (record.better, record.same, record.worse) == (24, 0, 0)


def test_per_example_counts_and_verdicts():
    record = summarise(losses([1.0, 1.0, 1.0, 1.0], [0.5, 1.0 + SAME_MARGIN / 2, 1.5, 0.9]), planned=6)
    assert (record.better, record.same, record.worse) == (2, 1, 1)
    assert record.partial and record.n == 4 and record.planned == 6
    assert summarise(losses([1.0, 1.0, 1.0], [1.4, 1.5, 1.6])).verdict == "higher"
    assert summarise(losses([1.0, 1.0, 1.0], [0.5, 1.5, 1.0])).verdict == "no clear change"
    one = summarise(losses([2.0], [1.0]))
    assert one.loss.low is None and one.verdict == "no interval" and not one.partial
    with pytest.raises(ValueError):
        summarise([])


def test_it_round_trips_through_json():
    record = summarise(losses([2.0, 1.2, 0.7], [1.0, 1.1, 0.9], [4, 8, 12]), planned=3, base_seconds=1.5,
                       tuned_seconds=1.25)
    again = AnswerLoss.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record and again.bootstrap["resamples"] == RESAMPLES and again.examples[2].tokens == 12
