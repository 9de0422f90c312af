"""The one-click before/after: a training job, then base vs tuned on the held-out prompts, then the report.

`DemoRun` wraps a `TrainingJob` and answers like one (status, progress, history, logs, stop, its model), so the
job registry, the Train tab and a page reload treat it as the visitor's job; when training completes it compares
in its own thread. A stop at any point keeps what was finished: during training the job saves the adapter trained
so far and the comparison is skipped; during the comparison the adapter stays and the examples both models had
finished are kept as a partial comparison (shown, and saved unless the run already has a complete one).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from studio import runs
from studio.errors import RunError, StudioError
from studio.evaluate.comparison import Comparison, ComparisonRow, load_comparison
from studio.evaluate.generation import GenerationStopped
from studio.jobs import TrainingJob
from studio.pipeline import compare_run, from_job, stopped_note

log = logging.getLogger("studio.demo")
# The story in five steps, as the page's step bar names them.
STAGES: tuple[tuple[str, str], ...] = (("data", "Data"), ("model", "Model"), ("train", "Train"),
                                       ("compare", "Compare"), ("results", "Results"))
UNEXPECTED = "Something unexpected went wrong while comparing; the details are in the server log."


class _QueueSeat:
    """The training queue as a DemoRun's watchers see it: the wrapped job's place in line."""

    def __init__(self, job: TrainingJob) -> None:
        self._job = job

    def position(self, _demo: Any) -> int:
        """How many jobs are ahead of the wrapped training job."""
        return self._job.queue.position(self._job)


class DemoRun:
    """Train (the wrapped job, through the queue like any job), then compare base vs tuned and write the report."""

    def __init__(self, job: TrainingJob) -> None:
        self.job = job
        self.queue = _QueueSeat(job)
        self.comparison: Comparison | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._final, self._ended_at, self._message, self._error = "", "", "", ""
        self._answering = {"which": "", "done": 0, "total": 0}
        self._logs: list[str] = []
        self._started: float | None = None
        self._ended: float | None = None

    # ---- what watchers read (the TrainingJob interface) -----------------------------------------------------
    run_id = property(lambda self: self.job.run_id, doc="The run's id.")
    run_dir = property(lambda self: self.job.run_dir, doc="The run's folder.")
    owner = property(lambda self: self.job.owner, doc="Who started it.")
    settings = property(lambda self: self.job.settings, doc="The settings it trains and compares with.")
    model = property(lambda self: self.job.model, doc="The tuned model once trained (adapter on; off = base).")
    tokenizer = property(lambda self: self.job.tokenizer, doc="The base model's tokenizer.")
    template = property(lambda self: self.job.template, doc="The prompt template it trained with.")
    splits = property(lambda self: self.job.splits, doc="The data splits.")

    @property
    def status(self) -> str:
        """The training job's status, then "evaluating" while comparing, then completed, stopped or failed."""
        if self._final:
            return self._final
        status = self.job.status
        if status == "completed":
            return "evaluating"
        # The job has ended but the demo's thread has not yet said how the demo ended: still wrapping up.
        return "saving" if status in runs.FINISHED else status

    @property
    def message(self) -> str:
        """What happened, in a sentence or two, once it ended."""
        return self._message or self.job.message

    @property
    def error(self) -> str:
        """Why it failed ('' unless it did)."""
        return self._error or self.job.error

    @property
    def stage(self) -> str:
        """data, model, train, compare or results (a stopped or failed demo keeps the stage it ended in)."""
        if self._final:
            return "results" if self.comparison is not None else self._ended_at
        status = self.job.status
        if status in ("queued", "preparing"):
            return "model" if self.job.splits is not None else "data"
        return "compare" if status == "completed" else "train"

    def history(self) -> list[dict[str, Any]]:
        """The training metric records so far."""
        return self.job.history()

    def logs(self) -> list[str]:
        """The training log, then the comparison's lines."""
        with self._lock:
            return self.job.logs() + list(self._logs)

    def progress(self) -> dict[str, Any]:
        """The training progress, plus the stage, how far the comparison is (which model, done, total) and the
        demo's own seconds since it started (training, waiting and comparing; final once it has ended)."""
        with self._lock:
            answering = dict(self._answering)
        started = self._started
        seconds = ((self._ended or time.monotonic()) - started) if started is not None else 0.0
        return {**self.job.progress(), "stage": self.stage, "answering": answering, "demo_seconds": round(seconds, 1)}

    # ---- control ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start training (joining the queue) and the thread that compares once training has completed."""
        if self._thread is not None:
            raise RunError("This demo has already been started.")
        self._started = time.monotonic()
        self.job.start()
        self._thread = threading.Thread(target=self._run, name=f"demo-{self.run_id}", daemon=True)
        self._thread.start()

    def stop(self, owner: str | None = None) -> None:
        """Stop wherever it is: training saves its adapter so far; comparing ends after the current batch."""
        if owner is not None and self.owner and owner != self.owner:
            raise RunError("This run belongs to another session, so it cannot be stopped from here.")
        if self._final:
            return
        self._stop.set()
        if self.job.status in runs.ACTIVE:
            self.job.stop(owner)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the whole demo; True once it has ended."""
        if self._thread is None:
            return self.job.join(timeout)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---- the comparison (in the demo's thread) ----------------------------------------------------------------
    def _run(self) -> None:
        self.job.join()
        if self.job.status != "completed":
            ended = self.job.status
            where = "data" if self.job.splits is None else "train" if self.job.history() else "model"
            self._end(ended, where, self.job.message + (" The comparison was skipped." if ended == "stopped" else ""))
            return
        if self._stop.is_set():
            self._end("stopped", "compare", f"{self.job.message} Stopped before comparing; compare the run later "
                      "from Compare.")
            return
        try:
            self._compare()
        except GenerationStopped as exc:
            self._end("stopped", "compare", f"{self.job.message} {self._stopped_comparing(exc)}")
        except StudioError as exc:
            self._end("failed", "compare", error=str(exc))
        except Exception:  # noqa: BLE001 - a failed demo must never take the server down
            log.exception("The demo's comparison failed")
            self._end("failed", "compare", error=UNEXPECTED)

    def _compare(self) -> None:
        rm = from_job(self.job)
        limit = self.settings.data.max_test_examples
        n = min(len(rm.test), limit) if limit > 0 else len(rm.test)
        self._log(f"Comparing base vs tuned on {n} held-out examples")
        result = compare_run(rm, self.settings.generation, limit=limit, progress=self._answered,
                             should_stop=self._stop.is_set)
        self.comparison = result
        bleu = f"BLEU {result.base.bleu:.1f} -> {result.tuned.bleu:.1f}"
        if result.partial:  # stopped mid-way: the examples both models finished are kept and shown
            self._end("stopped", "results", f"{self.job.message} {stopped_note(result, self.run_dir)} {bleu}.")
            return
        self._end("completed", "results", f"{self.job.message} Compared on {result.tuned.n} held-out examples: {bleu}.")

    def _stopped_comparing(self, exc: GenerationStopped) -> str:
        """What a stop during the comparison kept: the adapter always; answers only if Compare saved them."""
        with self._lock:
            which = self._answering["which"] or "base"
        done = sum(a is not None for a in exc.answers)
        kept = ("the answers so far were saved with the run" if load_comparison(self.run_dir) is not None
                else "no comparison was saved")
        return (f"Stopped while comparing (the {which} model had answered {done} of {len(exc.answers)} prompts): "
                f"{kept}; press Compare on the Compare tab to compare the run in full.")

    def _answered(self, which: str, done: int, total: int) -> None:
        with self._lock:
            self._answering = {"which": which, "done": done, "total": total}

    def _log(self, line: str) -> None:
        with self._lock:
            self._logs.append(line)

    def _end(self, status: str, stage: str, message: str = "", error: str = "") -> None:
        self._message, self._error, self._ended_at = message, error, stage
        self._ended = time.monotonic()
        if message or error:
            self._log(message or f"Failed: {error}")
        self._final = status  # last: watchers that see a final status see its message too


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
