"""The one-click before/after: a training job whose after-training stage compares base vs tuned and writes the report.

`demo_job` (or `TrainingJob(..., **demo_args())`) is an ordinary `TrainingJob`, so the job registry, the Train tab
and a page reload treat it as the visitor's job; once training completes, `CompareStage` runs in the job's own
thread. A stop at any point keeps what was finished: during training the job saves the adapter trained so far and
the comparison is skipped; during the comparison the adapter stays and the examples both models had finished are
kept as a partial comparison (shown, and saved unless the run already has a complete one). Also the pure helpers
that word the result for the page and the terminal.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.evaluate.comparison import Comparison, ComparisonRow, load_comparison
from studio.evaluate.generation import GenerationStopped
from studio.jobs import TrainingJob
from studio.pipeline import compare_run, from_job, stopped_note
from studio.settings import StudioSettings
from studio.stages import Progress, StageStopped

log = logging.getLogger("studio.demo")
# The story in five steps, as the page's step bar names them (the job's `stage`).
STAGES: tuple[tuple[str, str], ...] = (("data", "Data"), ("model", "Model"), ("train", "Train"),
                                       ("compare", "Compare"), ("results", "Results"))
UNEXPECTED = "Something unexpected went wrong while comparing; the details are in the server log."


class CompareStage:
    """After training: answer the held-out prompts with the adapter off and on, score them, write the report."""

    name = "compare"
    skipped = "The comparison was skipped."

    def run(self, job: TrainingJob, progress: Progress, should_stop: Callable[[], bool]) -> str:
        """Compare (keeping the result on `job.comparison`) and say how it went; StageStopped on a stop."""
        if should_stop():
            raise StageStopped("Stopped before comparing; compare the run later from Compare.")
        try:
            return _compare(job, progress, should_stop)
        except GenerationStopped as exc:
            raise StageStopped(_stopped_comparing(job, exc)) from None
        except (StudioError, StageStopped):
            raise
        except Exception as exc:  # noqa: BLE001 - one sentence for the page, the traceback for the log
            log.exception("The demo's comparison failed")
            raise StudioError(UNEXPECTED) from exc


def demo_args() -> dict[str, Any]:
    """The TrainingJob arguments that make a job the one-click demo (its after-training stage and kind)."""
    return {"after": (CompareStage(),), "kind": "demo"}


def demo_job(settings: StudioSettings, root: Path, **job_args: Any) -> TrainingJob:
    """The one-click before/after as one job: train (through the queue), then compare base vs tuned and report."""
    return TrainingJob(settings, root, **job_args, **demo_args())


def _compare(job: TrainingJob, progress: Progress, should_stop: Callable[[], bool]) -> str:
    rm = from_job(job)
    limit = job.settings.data.max_test_examples
    n = min(len(rm.test), limit) if limit > 0 else len(rm.test)
    job.log(f"Comparing base vs tuned on {n} held-out examples")
    result = compare_run(rm, job.settings.generation, limit=limit, progress=progress, should_stop=should_stop)
    job.comparison = result
    bleu = f"BLEU {result.base.bleu:.1f} -> {result.tuned.bleu:.1f}"
    if result.partial:  # stopped mid-way: the examples both models finished are kept and shown
        raise StageStopped(f"{stopped_note(result, job.run_dir)} {bleu}.")
    return f"Compared on {result.tuned.n} held-out examples: {bleu}."


def _stopped_comparing(job: TrainingJob, exc: GenerationStopped) -> str:
    """What a stop during the comparison kept: the adapter always; answers only if Compare saved them."""
    which = job.progress()["answering"]["which"] or "base"
    done = sum(a is not None for a in exc.answers)
    kept = ("the answers so far were saved with the run" if load_comparison(job.run_dir) is not None
            else "no comparison was saved")
    return (f"Stopped while comparing (the {which} model had answered {done} of {len(exc.answers)} prompts): "
            f"{kept}; press Compare on the Compare tab to compare the run in full.")


def best_rows(comparison: Comparison, k: int = 3) -> list[ComparisonRow]:
    """The k examples where tuning helped most (largest sentence-BLEU gain; exact answers first among equals)."""
    return sorted(comparison.rows, key=lambda r: (r.delta_bleu, r.tuned_exact), reverse=True)[:k]


def task_text(row: ComparisonRow) -> str:
    """The instruction, with its input when it has one."""
    return row.instruction + (f" Input: {row.input}" if row.input else "")


def examples_heading(comparison: Comparison) -> str:
    """'Where tuning helped most' when some example gained, else a plainer title (never claims a gain)."""
    return ("Where tuning helped most" if any(r.delta_bleu > 0 for r in comparison.rows)
            else "Three examples (tuning did not raise any example's BLEU)")


def example_lines(comparison: Comparison, k: int = 3, width: int = 70) -> list[str]:
    """The k best examples as terminal lines: the task, then the base answer, the tuned answer and the reference."""
    def clip(text: str) -> str:
        flat = " ".join(text.split())
        return repr(flat if len(flat) <= width else flat[:width - 1] + "…")

    lines = []
    for i, row in enumerate(best_rows(comparison, k), start=1):
        lines += [f"  {i}. {task_text(row)}", f"     before: {clip(row.base)}", f"     after:  {clip(row.tuned)}",
                  f"     expected: {clip(row.reference)}"]
    return lines
