"""The before/after record (`Comparison`, one `ComparisonRow` per held-out example) and its files in a run folder.

Pure data and JSON: no torch, so reports and plots can import it cheaply.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    @property
    def delta_bleu(self) -> float:
        """Sentence BLEU gained by tuning (negative when it got worse)."""
        return self.tuned_bleu - self.base_bleu


@dataclass
class Comparison:
    """Base vs tuned answers on the held-out examples, with scores and how they were generated."""

    rows: list[ComparisonRow]
    base: Scores
    tuned: Scores
    generation: dict
    base_seconds: float
    tuned_seconds: float
    template: str


def save_comparison(run_dir: Path, comparison: Comparison) -> None:
    """Write the comparison rows and summary into the run folder, and record BLEU in run.json."""
    lines = []
    for row in comparison.rows:
        record = dataclasses.asdict(row)
        record["base_response"], record["tuned_response"] = record.pop("base"), record.pop("tuned")
        lines.append(json.dumps(record, ensure_ascii=False))
    summary = {k: v for k, v in dataclasses.asdict(comparison).items() if k != "rows"}
    folder = RunFolder(run_dir)
    atomic_write(folder.comparison_rows_file, "".join(line + "\n" for line in lines))
    atomic_write(folder.comparison_file, json.dumps(summary, indent=2))
    update_run(run_dir, bleu_base=comparison.base.bleu, bleu_tuned=comparison.tuned.bleu,
               exact_base=comparison.base.exact_match, exact_tuned=comparison.tuned.exact_match)


def _row_from_record(record: dict[str, Any]) -> ComparisonRow:
    record = dict(record)
    record["base"], record["tuned"] = record.pop("base_response"), record.pop("tuned_response")
    names = {f.name for f in dataclasses.fields(ComparisonRow)}
    return ComparisonRow(**{k: v for k, v in record.items() if k in names})


def load_comparison(run_dir: Path) -> Comparison | None:
    """The saved comparison of a run, or None if the run has not been compared yet."""
    folder = RunFolder(run_dir)
    summary_path, rows_path = folder.comparison_file, folder.comparison_rows_file
    if not summary_path.is_file() or not rows_path.is_file():
        return None
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        lines = rows_path.read_text(encoding="utf-8").splitlines()
        rows = [_row_from_record(json.loads(line)) for line in lines if line.strip()]
        return Comparison(
            rows=rows, base=Scores(**summary["base"]), tuned=Scores(**summary["tuned"]),
            generation=summary["generation"], base_seconds=summary["base_seconds"],
            tuned_seconds=summary["tuned_seconds"], template=summary["template"],
        )
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise RunError(f"Run {run_dir.name} has an unreadable comparison; run the comparison again.") from None
