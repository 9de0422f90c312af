"""The prompt-only baseline, the record: its answers, their scores and tuned vs baseline with paired intervals.

Pure data, scoring and JSON (no torch), so `comparison.json`, the report and the pages take it cheaply;
`studio.evaluate.baseline` produces the answers. The answers are scored exactly as Compare scores base and tuned
(`scoring.score`), and the change is `significance.paired_bootstrap` with the baseline in the base's place: the
same resampled examples for both, so `changes[m].delta` is tuned minus baseline and its verdict follows
`change.judged` (the minimum effect per metric) like every other change.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from studio.evaluate.change import Change, Tally, judged
from studio.evaluate.lengths import CutCount, EndedBy, ran_into_limit, recorded_cuts
from studio.evaluate.scoring import ExampleScore, Scores, score
from studio.evaluate.significance import paired_bootstrap, win_tie_loss


class Generated(Protocol):
    """What generation records of one answer (`generation.Answer`)."""

    text: str
    raw: str
    n_tokens: int
    ended_by: EndedBy


class TunedRow(Protocol):
    """The tuned side of one Compare row (`comparison.ComparisonRow`)."""

    reference: str
    tuned: str
    tuned_bleu: float
    tuned_chrf: float
    tuned_exact: bool
    tuned_rouge_l: float | None


@dataclass
class BaselineRow:
    """One held-out example answered by the base model with the shots in front, and its sentence scores."""

    answer: str
    raw: str
    bleu: float
    chrf: float
    exact: bool
    rouge_l: float
    cut: bool | None = None  # ran into the answer-length limit instead of stopping


@dataclass
class BaselineRecord:
    """The k-shot baseline beside base and tuned: k and why, per-row answers (aligned with Compare's rows), scores,
    and the tuned model's changes over it. `shots` 0: skipped, `reason` says why and nothing else is filled."""

    shots: int
    reason: str
    shot_indices: list[int] = field(default_factory=list)  # training examples shown, in prompt order
    rows: list[BaselineRow] = field(default_factory=list)
    scores: Scores | None = None
    changes: dict[str, Change] = field(default_factory=dict)  # tuned minus baseline, with paired intervals
    tally: Tally | None = None  # per example by sentence BLEU: tuned better / equal / worse than the baseline
    seconds: float = 0.0
    estimated_seconds: float | None = None
    limit: int | None = None  # the answer-length limit, Compare's

    @property
    def ran(self) -> bool:
        """Whether the baseline answered (it may have been skipped, with `reason`)."""
        return self.shots > 0 and bool(self.rows)

    @property
    def label(self) -> str:
        """'prompting alone (3-shot)'."""
        return f"prompting alone ({self.shots}-shot)"

    def cut_count(self) -> CutCount | None:
        """How many baseline answers ran into the limit (and how many of those were looping); None when not recorded."""
        return recorded_cuts([row.cut for row in self.rows], [row.answer for row in self.rows], self.limit)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for comparison.json): each change with its verdict spelled out."""
        record = dataclasses.asdict(self)
        record["changes"] = {name: judged(name, change).record() for name, change in self.changes.items()}
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineRecord:
        """Read back what `to_dict` wrote (unknown keys ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        changes = {k: Change(**{n: v for n, v in c.items() if n in {f.name for f in dataclasses.fields(Change)}})
                   for k, c in data.get("changes", {}).items()}
        return cls(**{**data, "rows": [BaselineRow(**r) for r in data.get("rows", [])],
                      "scores": Scores(**data["scores"]) if data.get("scores") else None, "changes": changes,
                      "tally": Tally(**data["tally"]) if data.get("tally") else None})


def skipped(reason: str) -> BaselineRecord:
    """The record of a baseline that did not run, with why."""
    return BaselineRecord(shots=0, reason=reason)


def score_baseline(rows: Sequence[TunedRow], answers: Sequence[Generated], shots: int, reason: str,
                   shot_indices: Sequence[int] = (), limit: int | None = None, seconds: float = 0.0,
                   estimated_seconds: float | None = None) -> BaselineRecord:
    """Score the baseline's answers (aligned with Compare's rows) as base and tuned are, and tuned vs baseline."""
    if len(rows) != len(answers):
        raise ValueError(f"{len(rows)} compared rows but {len(answers)} baseline answers.")
    references, texts = [r.reference for r in rows], [a.text for a in answers]
    corpus, each = score(references, texts)
    tuned_each = [ExampleScore(r.tuned_bleu, r.tuned_chrf, r.tuned_exact, r.tuned_rouge_l or 0.0) for r in rows]
    scored = [BaselineRow(a.text, a.raw, s.bleu, s.chrf, s.exact, s.rouge_l,
                          None if limit is None else ran_into_limit(a.n_tokens, limit, a.ended_by))
              for a, s in zip(answers, each)]
    return BaselineRecord(
        shots=shots, reason=reason, shot_indices=list(shot_indices), rows=scored, scores=corpus,
        changes=paired_bootstrap(references, texts, [r.tuned for r in rows], each, tuned_each),
        tally=win_tie_loss([s.bleu for s in each], [s.bleu for s in tuned_each]), seconds=seconds,
        estimated_seconds=estimated_seconds, limit=limit,
    )
