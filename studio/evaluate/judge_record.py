"""An LLM judge's pairwise verdicts on a run's held-out answers, their summary and `judge.json` (no torch).

Every pair (tuned vs an opponent, the base model by default) is asked twice, once in each answer order, so a judge
that prefers whichever answer comes first cancels out. Each order's verdict is read from the tuned model's side
(tuned / opponent / tie). Per pair:
- agreement: both orders gave the same readable verdict; a reply that cannot be read counts as disagreeing;
- outcome: the mean of the two orders' scores (tuned 1, tie 0.5, opponent 0) above 0.5 is a win, below a loss, and
  exactly 0.5 a tie; only pairs whose two replies were both readable are scored.
The win rate is wins / scored pairs, with a percentile bootstrap interval over the scored pairs (the resampled
indices of `studio.evaluate.significance`). A judge that agrees with itself on fewer pairs than the threshold the
caller passes (the scorecard's `JUDGE_MIN_AGREEMENT`) is not trusted: its win rate decides nothing.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.errors import RunError, StudioError
from studio.evaluate.significance import CONFIDENCE, RESAMPLES, SEED, resample_indices
from studio.runs import RunFolder, atomic_write

ORDERS = ("opponent_first", "tuned_first")  # which answer the judge saw as A
_SCORE = {"tuned": 1.0, "tie": 0.5, "opponent": 0.0}


class JudgeUnavailable(StudioError):
    """The judge cannot be asked: an endpoint that cannot be reached or refuses, or a judge model without a chat
    template."""


class JudgeStopped(StudioError):
    """The user stopped the judge before it judged any pair; nothing was saved."""

    def __init__(self) -> None:
        super().__init__("The judge was stopped before it judged any pair; nothing was saved.")


@dataclass
class Verdict:
    """One question to the judge: a held-out example in one answer order, its raw reply and what it chose."""

    index: int  # the row of the comparison
    order: str  # one of ORDERS
    reply: str  # the judge's raw reply
    choice: str | None  # "A", "B", "tie", or None when the reply could not be read

    @property
    def winner(self) -> str | None:
        """The choice read from the tuned model's side: 'tuned', 'opponent', 'tie' (None when unreadable)."""
        if self.choice in (None, "tie"):
            return self.choice
        tuned_is_a = self.order == "tuned_first"
        return "tuned" if (self.choice == "A") == tuned_is_a else "opponent"


@dataclass
class JudgeResult:
    """Every verdict of one judging, how it was asked, and the threshold its self-agreement is held to."""

    judge: str  # which judge: the model name and, for an endpoint, its URL (never a key)
    backend: str  # "transformers", "endpoint" or "providers"
    prompt: str  # the prompt template, with {instruction}, {input}, {reference}, {answer_a}, {answer_b}
    opponent: str  # the answers the tuned ones were judged against: "base" (or "baseline")
    verdicts: list[Verdict]
    min_agreement: float
    planned: int = 0  # held-out examples the judging set out to judge
    partial: bool = False  # stopped between two pairs: the verdicts cover the pairs judged before
    generation: dict = field(default_factory=dict)  # how the judge answered (greedy, token limit)
    seconds: float = 0.0

    def pair_winners(self) -> dict[int, list[str | None]]:
        """Per example judged in both orders, the winners of the two orders (opponent first, then tuned first)."""
        by_index: dict[int, dict[str, str | None]] = {}
        for v in self.verdicts:
            by_index.setdefault(v.index, {})[v.order] = v.winner
        return {i: [orders[o] for o in ORDERS] for i, orders in by_index.items() if set(orders) == set(ORDERS)}

    def pair_scores(self) -> list[float]:
        """Each scored pair's mean score for the tuned answer (1 win, 0.5 tie, 0 loss), both orders readable."""
        return [sum(_SCORE[w] for w in pair) / 2 for pair in self.pair_winners().values() if None not in pair]

    def summary(self) -> dict[str, Any]:
        """What the scorecard's `judge_sentence` reads: win_rate, low, high, pairs, ties, agreement, opponent,
        trusted; plus wins, losses, judged pairs and unreadable replies."""
        pairs, scores = self.pair_winners(), np.array(self.pair_scores())
        agreement = sum(a is not None and a == b for a, b in pairs.values()) / len(pairs) if pairs else None
        wins, ties = int((scores > 0.5).sum()), int((scores == 0.5).sum())
        low = high = None
        if scores.size >= 2:
            rates = (scores[resample_indices(scores.size)] > 0.5).mean(axis=1)
            tail = 100 * (1 - CONFIDENCE) / 2
            low, high = (float(x) for x in np.percentile(rates, [tail, 100 - tail]))
        return {"win_rate": wins / scores.size if scores.size else None, "low": low, "high": high,
                "pairs": int(scores.size), "wins": wins, "ties": ties, "losses": int(scores.size) - wins - ties,
                "agreement": agreement, "opponent": self.opponent,
                "trusted": bool(scores.size) and agreement is not None and agreement >= self.min_agreement,
                "judged": len(pairs), "unreadable": sum(v.choice is None for v in self.verdicts)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON record: how the judge was asked, the summary, and every verdict with its raw reply."""
        record = dataclasses.asdict(self)
        record["summary"] = self.summary()
        record["bootstrap"] = {"resamples": RESAMPLES, "seed": SEED, "confidence": CONFIDENCE,
                               "method": "percentile bootstrap of the win rate over the scored pairs"}
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> JudgeResult:
        """Read back `to_dict`'s record (the summary is recomputed from the verdicts)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in record.items() if k in names}
        values["verdicts"] = [Verdict(**v) for v in record["verdicts"]]
        return cls(**values)


def save_judge(run_dir: Path, result: JudgeResult) -> Path:
    """Write judge.json into the run folder (atomically); returns its path."""
    path = RunFolder(run_dir).judge_file
    atomic_write(path, json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    return path


def load_judge(run_dir: Path) -> JudgeResult | None:
    """The run's saved judging, or None when it was never judged."""
    path = RunFolder(run_dir).judge_file
    if not path.is_file():
        return None
    try:
        return JudgeResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise RunError(f"Run {run_dir.name} has an unreadable judge.json; judge it again.") from None
