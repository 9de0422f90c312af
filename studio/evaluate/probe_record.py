"""The forgetting probe's record: accuracy per category for base vs tuned, the change with a paired 95% interval,
and one plain sentence ("No significant loss." / "Lost 6 points on arithmetic.").

Pure data, statistics and JSON (numpy, no torch), so the report, the model card and the UI import it cheaply.
The interval is a paired bootstrap over items (`significance.paired_interval`, Compare's resampling): the same
resampled items score both models, so an item both get right (or both get wrong) adds no noise to the change.
A change counts as significant when its whole 95% interval lies on one side of zero; categories are not corrected
for being several tests at once.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.errors import RunError, StudioError
from studio.evaluate.significance import CONFIDENCE, RESAMPLES, SEED, paired_interval
from studio.runs import RunFolder, atomic_write

ItemScores = dict[str, list[float]]  # metric ("acc", "acc_norm") -> 1.0 / 0.0 per item, in the task's item order
HEADLINE_METRIC = "acc"
INTERVAL = f"paired bootstrap over items ({RESAMPLES:,} resamples, seed {SEED}), {CONFIDENCE:.0%} percentile interval"
TASK_PREFIX = "probe_"  # the built-in probe's task names: probe_arithmetic -> "arithmetic"


class ProbeStopped(StudioError):
    """The user stopped the probe between two batches; nothing was saved."""

    def __init__(self) -> None:
        super().__init__("The forgetting probe was stopped; nothing was saved.")


def label_of(task: str) -> str:
    """What a person calls a task: the category for built-in ones ("word relations"), else the lm-eval name."""
    return task.removeprefix(TASK_PREFIX).replace("_", " ") if task.startswith(TASK_PREFIX) else task


@dataclass
class CategoryScore:
    """One category (or the whole probe): accuracy before and after, and the change's 95% interval (fractions)."""

    task: str
    label: str
    n: int
    base: float
    tuned: float
    low: float
    high: float

    @property
    def change(self) -> float:
        """Tuned minus base accuracy (a fraction; -0.06 is six points lost)."""
        return self.tuned - self.base

    @property
    def lost(self) -> bool:
        """Significantly worse: the whole interval is below zero."""
        return self.high < 0

    @property
    def gained(self) -> bool:
        """Significantly better: the whole interval is above zero."""
        return self.low > 0


def category_score(task: str, base: list[float], tuned: list[float], label: str = "") -> CategoryScore:
    """Accuracy of both models on one task's items and the paired interval of the change."""
    low, high = paired_interval(base, tuned)
    return CategoryScore(task, label or label_of(task), len(base), float(np.mean(base)), float(np.mean(tuned)),
                         low, high)


def _points(fraction: float) -> str:
    return f"{abs(100 * fraction):.0f}"


def verdict(categories: list[CategoryScore], overall: CategoryScore) -> str:
    """The plain sentence: which categories lost significantly, else "No significant loss" (and any gains)."""
    lost = sorted((c for c in categories if c.lost), key=lambda c: c.change)
    if lost:
        first, *rest = lost
        more = "".join(f", {_points(c.change)} on {c.label}" for c in rest)
        return f"Lost {_points(first.change)} points on {first.label}{more}."
    if overall.lost:
        return f"Lost {_points(overall.change)} points overall, spread over the categories (none alone significant)."
    gained = [f"{_points(c.change)} points on {c.label}" for c in categories if c.gained]
    return "No significant loss" + (f"; gained {', '.join(gained)}." if gained else ".")


@dataclass
class ProbeResult:
    """Base vs tuned on every probe task: per category, overall, the sentence, and the per-item scores behind them."""

    categories: list[CategoryScore]
    overall: CategoryScore
    base_seconds: float
    tuned_seconds: float
    items: dict[str, dict[str, ItemScores]]  # task -> {"base": ItemScores, "tuned": ItemScores}
    metric: str = HEADLINE_METRIC
    interval: str = INTERVAL

    @property
    def sentence(self) -> str:
        """No significant loss / Lost N points on ... ."""
        return verdict(self.categories, self.overall)

    @property
    def forgot(self) -> bool:
        """True when a category, or the probe as a whole, lost significantly."""
        return self.overall.lost or any(c.lost for c in self.categories)

    @property
    def last_line(self) -> str:
        """The CLI's closing line: probe accuracy base X% -> tuned Y%."""
        return f"probe accuracy base {100 * self.overall.base:.1f}% -> tuned {100 * self.overall.tuned:.1f}%"


def summarize(tasks: list[str], base: dict[str, ItemScores], tuned: dict[str, ItemScores],
              base_seconds: float = 0.0, tuned_seconds: float = 0.0, metric: str = HEADLINE_METRIC) -> ProbeResult:
    """Per-task item scores of both models -> the ProbeResult (categories in task order, overall over all items)."""
    missing = [t for t in tasks if metric not in base.get(t, {}) or metric not in tuned.get(t, {})]
    if missing:
        raise RunError(f"Task {missing[0]} reported no {metric} scores, so the probe cannot summarise it.")
    categories = [category_score(t, base[t][metric], tuned[t][metric]) for t in tasks]
    pooled_base = [x for t in tasks for x in base[t][metric]]
    pooled_tuned = [x for t in tasks for x in tuned[t][metric]]
    overall = category_score("overall", pooled_base, pooled_tuned, label="overall")
    items = {t: {"base": base[t], "tuned": tuned[t]} for t in tasks}
    return ProbeResult(categories, overall, base_seconds, tuned_seconds, items, metric)


def save_probe(run_dir: Path, result: ProbeResult) -> Path:
    """Write the probe's record (summary, sentence and per-item scores) into the run folder atomically."""
    record = dataclasses.asdict(result)
    record["sentence"] = result.sentence
    path = RunFolder(run_dir).probe_file
    try:
        atomic_write(path, json.dumps(record, indent=1))
    except FileNotFoundError:
        raise RunError(f"Run folder {run_dir.name} was deleted while the probe ran.") from None
    return path


def load_probe(run_dir: Path) -> ProbeResult | None:
    """The run's saved probe result, or None if the probe has not been run on it."""
    path = RunFolder(run_dir).probe_file
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        record.pop("sentence", None)
        record["categories"] = [CategoryScore(**c) for c in record["categories"]]
        record["overall"] = CategoryScore(**record["overall"])
        return ProbeResult(**record)
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise RunError(f"Run {run_dir.name} has an unreadable probe result; run the probe again.") from None
