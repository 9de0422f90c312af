"""The learning timeline record: a run's snapshots scored step by step (pure data and JSON, no torch).

Point 0 is the base model (adapter disabled); then one point per snapshot, each with its held-out (test) scores
and answers, its validation scores when the run has a validation split, and the eval loss logged at that step.
The test scores are for showing; choosing a snapshot as the run's adapter looks only at validation BLEU or eval
loss (`best_snapshot`), never at the test rows it is shown on.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import RunError
from studio.evaluate.scoring import Scores
from studio.runs import RunFolder, atomic_write

CRITERIA = {"validation_bleu": "validation BLEU", "eval_loss": "eval loss"}
NO_VALIDATION = ("This run has no validation split, so no snapshot can be chosen: picking one by its test scores "
                 "would flatter it. Train with data.validation_fraction above 0 to choose one by validation BLEU or "
                 "eval loss.")


@dataclass
class TimelinePoint:
    """One step of the timeline: 0 is the base model, any other step a snapshot of the adapter."""

    step: int
    test: Scores
    answers: list[str]  # the test answers, in the order of Timeline.examples
    validation: Scores | None = None
    eval_loss: float | None = None


@dataclass
class Timeline:
    """Every snapshot of a run scored on the same held-out rows with the same generation settings."""

    examples: list[dict[str, str]]  # instruction, input, reference of each test row answered
    points: list[TimelinePoint]
    generation: dict
    n_validation: int = 0  # validation rows scored at each point (0: the run has no validation split)
    partial: bool = False  # stopped before every snapshot was scored
    planned: int = 0  # points the scoring set out to make (base + snapshots)
    final_step: int = 0  # the run's last trained step
    chosen_step: int | None = field(default=None)  # the snapshot in use as the run's adapter, if one was chosen

    @property
    def snapshots(self) -> list[TimelinePoint]:
        """The points of real snapshots (step > 0)."""
        return [p for p in self.points if p.step > 0]


def best_snapshot(timeline: Timeline, criterion: str) -> TimelinePoint:
    """The snapshot with the best validation BLEU (highest) or eval loss (lowest); RunError when none can be judged."""
    if criterion not in CRITERIA:
        raise RunError(f"Choose a snapshot by {' or '.join(CRITERIA.values())}, not {criterion!r}.")
    if not timeline.n_validation:
        raise RunError(NO_VALIDATION)
    if criterion == "validation_bleu":
        judged = [p for p in timeline.snapshots if p.validation is not None]
        key = (lambda p: (p.validation.bleu, p.step))  # ties go to the later, longer-trained snapshot
    else:
        judged = [p for p in timeline.snapshots if p.eval_loss is not None]
        key = (lambda p: (-p.eval_loss, p.step))
    if not judged:
        raise RunError(f"No scored snapshot has a recorded {CRITERIA[criterion]}; score the snapshots first, or log "
                       "eval loss at the snapshot steps (train.eval_steps).")
    return max(judged, key=key)


def choice_note(timeline: Timeline) -> str:
    """One line on what can be chosen: which snapshot is best by each criterion, or why none can be."""
    if not timeline.n_validation:
        return NO_VALIDATION
    parts = []
    for criterion, label in CRITERIA.items():
        try:
            point = best_snapshot(timeline, criterion)
        except RunError:
            continue
        value = f"{point.validation.bleu:.1f}" if criterion == "validation_bleu" else f"{point.eval_loss:.4g}"
        parts.append(f"by {label}: step {point.step} ({value})")
    return ("Best snapshot " + "; ".join(parts) + ".") if parts else "No snapshot has a validation score yet."


def save_timeline(run_dir: Path, timeline: Timeline) -> None:
    """Write the timeline into the run folder (atomically)."""
    atomic_write(RunFolder(run_dir).timeline_file, json.dumps(dataclasses.asdict(timeline), indent=1,
                                                              ensure_ascii=False))


def _scores(record: dict[str, Any] | None) -> Scores | None:
    return Scores(**record) if record else None


def load_timeline(run_dir: Path) -> Timeline | None:
    """The run's saved timeline, or None when its snapshots have not been scored."""
    path = RunFolder(run_dir).timeline_file
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        points = [TimelinePoint(step=p["step"], test=_scores(p["test"]), answers=list(p["answers"]),
                                validation=_scores(p.get("validation")), eval_loss=p.get("eval_loss"))
                  for p in data["points"]]
        known = {f.name for f in dataclasses.fields(Timeline)} - {"points"}
        return Timeline(points=points, **{k: v for k, v in data.items() if k in known})
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise RunError(f"Run {run_dir.name} has an unreadable timeline; score its snapshots again.") from None
