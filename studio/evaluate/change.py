"""A metric's change from base to tuned, its confidence interval, and whether it is large enough to matter.

Pure data (no torch, no numpy): the `Comparison` record, the paired bootstrap, the answer-loss record and the
scorecard all speak it. A change is called a gain (or a loss) only when its 95% interval excludes zero AND it is at
least the metric's minimum effect; a change whose interval excludes zero but which is smaller than that is
"negligible" (48 examples can pin down +0.1 BLEU precisely, and +0.1 BLEU still means nothing to a reader).

The minimum effects, per metric (`MINIMUM_EFFECT`, in the metric's own display units):
- BLEU, chrF, ROUGE-L (0-100): 2 points. Changes under about 1-2 BLEU points are within what tokenisation and
  decoding choices move on their own, and readers of MT/summarisation results do not act on them.
- Exact match: 5 percentage points (for example 1 in 20 answers).
- Held-out answer loss: the references' perplexity changes by at least 5% of the base model's (`PERPLEXITY_SHARE`);
  a change measured in loss units (nats per token) needs |delta| >= -ln(0.95), the same thing.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

MINIMUM_EFFECT: dict[str, float] = {"bleu": 2.0, "chrf": 2.0, "rouge_l": 2.0, "exact_match": 5.0}
PERPLEXITY_SHARE = 0.05  # the smallest relative perplexity change of the reference answers that counts
MINIMUM_LOSS_CHANGE = -math.log(1 - PERPLEXITY_SHARE)  # the same rule in loss units (nats per token)


@dataclass
class Change:
    """A metric's change from base to tuned (points; exact match in percentage points) and its confidence interval.

    `low`/`high` are None when there are too few examples (fewer than 2) to resample. `minimum` is the smallest
    change that counts as a gain or loss (0: any change the interval is sure of), `lower_is_better` flips which
    direction is a gain (loss, perplexity). Neither is saved: they are the rule of this version, applied on reading.
    """

    base: float
    tuned: float
    delta: float
    low: float | None = None
    high: float | None = None
    minimum: float = 0.0
    lower_is_better: bool = False

    @property
    def verdict(self) -> str:
        """'gain'/'loss' (interval excludes 0, |delta| >= minimum), 'negligible', 'not significant', 'no interval'."""
        if self.low is None or self.high is None:
            return "no interval"
        up, down = self.low > 0, self.high < 0
        if not (up or down):
            return "not significant"
        if abs(self.delta) < self.minimum:
            return "negligible"
        return "gain" if up != self.lower_is_better else "loss"

    @property
    def significant(self) -> bool:
        """Whether the change is a clear gain or loss: its interval excludes 0 and it is at least `minimum`."""
        return self.verdict in ("gain", "loss")

    def record(self) -> dict[str, float | str | None]:
        """The JSON form: base, tuned, delta, low, high and the verdict spelled out (the rule itself not saved)."""
        saved = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("minimum", "lower_is_better")}
        return {**saved, "verdict": self.verdict}


def judged(key: str, change: Change) -> Change:
    """The change with its metric's minimum effect applied (unchanged for a metric without one)."""
    if key not in MINIMUM_EFFECT:
        return change
    return dataclasses.replace(change, minimum=MINIMUM_EFFECT[key])


def perplexity_judged(change: Change) -> Change:
    """A perplexity change (lower is better) that counts only when it moves by PERPLEXITY_SHARE of the base's."""
    return dataclasses.replace(change, minimum=PERPLEXITY_SHARE * abs(change.base), lower_is_better=True)


@dataclass
class Tally:
    """Per-example outcomes by sentence BLEU: better, equal within MARGIN points (equal as shown), worse."""

    MARGIN: ClassVar[float] = 0.05

    wins: int
    ties: int
    losses: int
