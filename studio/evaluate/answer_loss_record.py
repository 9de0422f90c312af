"""Held-out answer loss, the record: how likely each model finds the reference answers, and the change.

Pure data, statistics and JSON (numpy, no torch), so the report, the model card and `comparison.json` take it
cheaply; `studio.evaluate.answer_loss` measures it. Per example: the mean cross-entropy (nats per token) of the
reference answer's tokens (+ EOS) given the prompt, adapter off (base) and on (tuned). The corpus loss is the mean
over every answer token (token-weighted, as a training loss is) and its perplexity `exp(loss)`. The change's
interval is the paired bootstrap of `studio.evaluate.significance` (its resample indices, seed and confidence):
the same resampled examples for both models. Lower is better, so a change whose whole interval lies below zero is
the tuned model finding the references more likely.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.evaluate.change import Change
from studio.evaluate.significance import CONFIDENCE, bootstrap_record, resample_indices

# Per-example changes smaller than this (nats per token, about 1% of perplexity) count as "same".
SAME_MARGIN = 0.01


@dataclass
class ExampleLoss:
    """One held-out example: its answer's token count and the mean loss per token of each model."""

    index: int  # position in the held-out examples, so it can be matched to Compare's rows
    tokens: int
    base: float
    tuned: float


@dataclass
class AnswerLoss:
    """Answer loss and perplexity of base and tuned on the held-out references, with the paired change."""

    examples: list[ExampleLoss]
    loss: Change  # corpus mean loss per token: base, tuned, tuned - base and its interval (negative is better)
    perplexity: Change  # exp(loss) of each, the same resamples
    better: int
    same: int
    worse: int
    planned: int  # examples meant to be scored; more than len(examples) when stopped early
    base_seconds: float = 0.0
    tuned_seconds: float = 0.0
    precision: str = "fp32"  # the arithmetic it was read in (`studio.evaluate.precision`); older records: fp32
    bootstrap: dict[str, Any] = field(default_factory=bootstrap_record)

    @property
    def n(self) -> int:
        """Examples scored."""
        return len(self.examples)

    @property
    def partial(self) -> bool:
        """Whether a stop left some examples unscored."""
        return self.n < self.planned

    @property
    def verdict(self) -> str:
        """'lower' or 'higher' (tuned vs base) when the interval excludes 0, else 'no clear change' or 'no interval'."""
        if self.loss.low is None or self.loss.high is None:
            return "no interval"
        return "lower" if self.loss.high < 0 else "higher" if self.loss.low > 0 else "no clear change"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for comparison.json)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerLoss:
        """Read back what `to_dict` wrote."""
        return cls(**{**data, "examples": [ExampleLoss(**e) for e in data["examples"]],
                      "loss": Change(**data["loss"]), "perplexity": Change(**data["perplexity"])})


def _interval(deltas: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return float(low), float(high)


def summarise(examples: list[ExampleLoss], planned: int | None = None, base_seconds: float = 0.0,
              tuned_seconds: float = 0.0, precision: str = "fp32") -> AnswerLoss:
    """The record of per-example losses: corpus loss and perplexity of each model, the change and its interval."""
    if not examples:
        raise ValueError("answer loss needs at least one scored example")
    tokens = np.array([e.tokens for e in examples], dtype=np.float64)
    sums = {who: np.array([getattr(e, who) for e in examples]) * tokens for who in ("base", "tuned")}
    base, tuned = (float(sums[who].sum() / tokens.sum()) for who in ("base", "tuned"))
    loss = Change(base=base, tuned=tuned, delta=tuned - base)
    perplexity = Change(base=float(np.exp(base)), tuned=float(np.exp(tuned)),
                        delta=float(np.exp(tuned) - np.exp(base)))
    if len(examples) >= 2:
        idx = resample_indices(len(examples))  # (resamples, n), the indices every Compare metric shares
        b, t = (sums[who][idx].sum(axis=1) / tokens[idx].sum(axis=1) for who in ("base", "tuned"))
        loss.low, loss.high = _interval(t - b)
        perplexity.low, perplexity.high = _interval(np.exp(t) - np.exp(b))
    deltas = [e.tuned - e.base for e in examples]
    better, worse = sum(d <= -SAME_MARGIN for d in deltas), sum(d >= SAME_MARGIN for d in deltas)
    return AnswerLoss(examples=examples, loss=loss, perplexity=perplexity, better=better,
                      same=len(deltas) - better - worse, worse=worse,
                      planned=len(examples) if planned is None else planned,
                      base_seconds=base_seconds, tuned_seconds=tuned_seconds, precision=precision)
