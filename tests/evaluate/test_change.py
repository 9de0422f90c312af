"""A change and whether it matters (studio.evaluate.change): sure AND large enough is a gain, sure but small is not."""
from __future__ import annotations

import math

import pytest

from studio.evaluate.change import (
    MINIMUM_EFFECT,
    MINIMUM_LOSS_CHANGE,
    PERPLEXITY_SHARE,
    Change,
    judged,
    perplexity_judged,
)


def test_without_a_minimum_the_interval_alone_decides():
    assert Change(1.0, 1.1, 0.1, 0.02, 0.2).verdict == "gain"
    assert Change(1.0, 0.9, -0.1, -0.2, -0.02).verdict == "loss"
    assert Change(1.0, 1.1, 0.1, -0.1, 0.3).verdict == "not significant"
    assert Change(1.0, 1.1, 0.1).verdict == "no interval"


def test_a_sure_but_tiny_change_is_negligible_not_a_gain():
    tiny = judged("bleu", Change(0.1, 0.2, 0.1, 0.0001, 0.2))  # "+0.1 BLEU, significant" before this rule
    assert tiny.minimum == MINIMUM_EFFECT["bleu"] == 2.0
    assert tiny.verdict == "negligible" and not tiny.significant
    assert judged("bleu", Change(10.0, 12.5, 2.5, 0.5, 4.5)).verdict == "gain"
    assert judged("bleu", Change(10.0, 7.0, -3.0, -5.0, -1.0)).verdict == "loss"
    assert judged("exact_match", Change(10.0, 14.0, 4.0, 1.0, 7.0)).verdict == "negligible"  # under 5 points
    assert judged("exact_match", Change(10.0, 16.25, 6.25, 1.0, 12.0)).verdict == "gain"
    assert judged("chrf", Change(1.0, 1.5, 0.5, -1.0, 2.0)).verdict == "not significant"
    assert judged("unknown", Change(1.0, 1.1, 0.1, 0.05, 0.2)).verdict == "gain"  # no minimum known: unchanged


def test_perplexity_counts_when_it_moves_five_percent_and_lower_is_better():
    fell = perplexity_judged(Change(7.4, 5.7, -1.7, -2.1, -1.3))
    assert fell.lower_is_better and fell.minimum == pytest.approx(PERPLEXITY_SHARE * 7.4)
    assert fell.verdict == "gain" and fell.significant
    assert perplexity_judged(Change(5.7, 7.4, 1.7, 1.3, 2.1)).verdict == "loss"
    assert perplexity_judged(Change(7.4, 7.2, -0.2, -0.3, -0.1)).verdict == "negligible"  # under 5% of 7.4
    assert MINIMUM_LOSS_CHANGE == pytest.approx(-math.log(0.95))  # the same rule in nats per token


def test_the_record_spells_the_verdict_and_leaves_the_rule_out():
    record = judged("bleu", Change(0.1, 0.2, 0.1, 0.01, 0.2)).record()
    assert record == {"base": 0.1, "tuned": 0.2, "delta": 0.1, "low": 0.01, "high": 0.2, "verdict": "negligible"}
