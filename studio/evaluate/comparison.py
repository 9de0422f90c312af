"""The before/after record (`Comparison`, one `ComparisonRow` per held-out example) and its files in a run folder.

Pure data and JSON: no torch, so reports and plots can import it cheaply.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from studio.errors import RunError
from studio.evaluate.scoring import Scores
from studio.runs import RunFolder, atomic_write, update_run


@dataclass
class ComparisonRow:
    """One held-out example answered by both models."""

    instruction: str
    input: str
    reference: str
    base: str
    tuned: str
    base_bleu: float
    tuned_bleu: float
    base_chrf: float
    tuned_chrf: float
    base_exact: bool
    tuned_exact: bool
    # Everything each model wrote, before the cut (special tokens shown); "" in comparisons saved before it was kept.
    base_raw: str = ""
    tuned_raw: str = ""
    base_rouge_l: float | None = None
    tuned_rouge_l: float | None = None

    @property
    def delta_bleu(self) -> float:
        """Sentence BLEU gained by tuning (negative when it got worse)."""
        return self.tuned_bleu - self.base_bleu


@dataclass
class Change:
    """A metric's change from base to tuned (points; exact match in percentage points) and its confidence interval.

    `low`/`high` are None when there are too few examples (fewer than 2) to resample.
    """

    base: float
    tuned: float
    delta: float
    low: float | None = None
    high: float | None = None

    @property
    def verdict(self) -> str:
        """'gain' or 'loss' when the interval excludes 0, else 'not significant' (or 'no interval')."""
        if self.low is None or self.high is None:
            return "no interval"
        return "gain" if self.low > 0 else "loss" if self.high < 0 else "not significant"

    @property
    def significant(self) -> bool:
        """Whether the confidence interval excludes 0."""
        return self.verdict in ("gain", "loss")


@dataclass
class Tally:
    """Per-example outcomes by sentence BLEU: better, equal within MARGIN points (equal as shown), worse."""

    MARGIN: ClassVar[float] = 0.05

    wins: int
    ties: int
    losses: int


@dataclass
class Comparison:
    """Base vs tuned answers on the held-out examples, with scores and how they were generated.

    Fields after `template` are absent from comparisons saved by older versions: they load as None / empty.
    """

    rows: list[ComparisonRow]
    base: Scores
    tuned: Scores
    generation: dict
    base_seconds: float
    tuned_seconds: float
    template: str
    stop_strings: list[str] | None = None  # the template's stop strings, the same for both models
    eos_tokens: list[str] = field(default_factory=list)  # the end-of-sequence tokens, which always stop
    changes: dict[str, Change] = field(default_factory=dict)  # metric -> change with its confidence interval
    tally: Tally | None = None
    bootstrap: dict = field(default_factory=dict)  # how the intervals were computed


def save_comparison(run_dir: Path, comparison: Comparison) -> None:
    """Write the comparison rows and summary into the run folder, and record BLEU in run.json."""
    lines = []
    for row in comparison.rows:
        record = dataclasses.asdict(row)
        record["base_response"], record["tuned_response"] = record.pop("base"), record.pop("tuned")
        lines.append(json.dumps(record, ensure_ascii=False))
    summary = {k: v for k, v in dataclasses.asdict(comparison).items() if k != "rows"}
    for name, change in comparison.changes.items():  # readers of the JSON get the verdict spelled out
        summary["changes"][name]["verdict"] = change.verdict
    folder = RunFolder(run_dir)
    atomic_write(folder.comparison_rows_file, "".join(line + "\n" for line in lines))
    atomic_write(folder.comparison_file, json.dumps(summary, indent=2, ensure_ascii=False))
    update_run(run_dir, bleu_base=comparison.base.bleu, bleu_tuned=comparison.tuned.bleu,
               exact_base=comparison.base.exact_match, exact_tuned=comparison.tuned.exact_match)


def _known(cls: type, record: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in record.items() if k in names}


def _row_from_record(record: dict[str, Any]) -> ComparisonRow:
    record = dict(record)
    record["base"], record["tuned"] = record.pop("base_response"), record.pop("tuned_response")
    return ComparisonRow(**_known(ComparisonRow, record))


def _comparison_from(summary: dict[str, Any], rows: list[ComparisonRow]) -> Comparison:
    tally = summary.get("tally")
    return Comparison(
        rows=rows, base=Scores(**_known(Scores, summary["base"])), tuned=Scores(**_known(Scores, summary["tuned"])),
        generation=summary["generation"], base_seconds=summary["base_seconds"],
        tuned_seconds=summary["tuned_seconds"], template=summary["template"],
        stop_strings=summary.get("stop_strings"), eos_tokens=summary.get("eos_tokens", []),
        changes={k: Change(**_known(Change, v)) for k, v in summary.get("changes", {}).items()},
        tally=Tally(**_known(Tally, tally)) if tally else None, bootstrap=summary.get("bootstrap", {}),
    )


def load_comparison(run_dir: Path) -> Comparison | None:
    """The saved comparison of a run, or None if the run has not been compared yet (older files load too)."""
    folder = RunFolder(run_dir)
    summary_path, rows_path = folder.comparison_file, folder.comparison_rows_file
    if not summary_path.is_file() or not rows_path.is_file():
        return None
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        lines = rows_path.read_text(encoding="utf-8").splitlines()
        return _comparison_from(summary, [_row_from_record(json.loads(line)) for line in lines if line.strip()])
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise RunError(f"Run {run_dir.name} has an unreadable comparison; run the comparison again.") from None
