"""What a training job's watchers poll: its metric history, log lines and progress, behind one lock.

The job's thread writes (each `MetricsCallback` record, each log line, how far an after-training stage is); the UI,
the command line and tests read copies from any thread.
"""
from __future__ import annotations

import threading
from typing import Any


class TrainingProgress:
    """The lock-guarded history, log and progress counters of one training job."""

    def __init__(self, history: list[dict[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._history: list[dict[str, Any]] = list(history or [])  # a resumed run starts with its saved records
        self._logs: list[str] = []
        self._progress: dict[str, Any] = {"step": 0, "total_steps": 0, "epoch": 0.0, "tokens_per_second": None,
                                          "elapsed": 0.0}
        self._answering = {"which": "", "done": 0, "total": 0}

    def history(self) -> list[dict[str, Any]]:
        """A copy of the metric records so far (one per logged step or evaluation)."""
        with self._lock:
            return [dict(r) for r in self._history]

    def logs(self) -> list[str]:
        """Short human-readable log lines so far."""
        with self._lock:
            return list(self._logs)

    def log(self, line: str) -> None:
        """Add a line to the log."""
        with self._lock:
            self._logs.append(line)

    def last(self, key: str) -> Any:
        """The latest record's non-empty `key` (e.g. the final training loss), or None."""
        with self._lock:
            return next((r[key] for r in reversed(self._history) if r.get(key) is not None), None)

    def value(self, key: str) -> Any:
        """One progress counter as it stands (step, total_steps, epoch, tokens_per_second, elapsed)."""
        with self._lock:
            return self._progress[key]

    def update(self, **values: Any) -> None:
        """Set progress counters (and `first_step` / `first_elapsed`: where this session's training began)."""
        with self._lock:
            self._progress.update(values)

    def add(self, record: dict[str, Any]) -> None:
        """Keep a metric record; a training-loss record moves progress on; each says a line in the log."""
        with self._lock:
            self._history.append(record)
        if record.get("loss") is not None:
            self.update(step=record["step"], epoch=record.get("epoch") or 0.0,
                        tokens_per_second=record.get("tokens_per_second"), elapsed=record["elapsed"])
            self.log(f"step {record['step']}/{self.value('total_steps')} loss {record['loss']:.4g}")
        if record.get("eval_loss") is not None:
            self.log(f"step {record['step']} eval loss {record['eval_loss']:.4g}")

    def answered(self, which: str, done: int, total: int) -> None:
        """How far an after-training stage is: which model answers, and how many prompts of how many it has done."""
        with self._lock:
            self._answering = {"which": which, "done": done, "total": total}

    def answering(self) -> dict[str, Any]:
        """A copy of what `answered` last said."""
        with self._lock:
            return dict(self._answering)

    def view(self) -> dict[str, Any]:
        """step, total_steps, epoch, fraction, tokens_per_second, eta_seconds and elapsed (training seconds)."""
        with self._lock:
            p = dict(self._progress)
        step, total = p["step"], p["total_steps"]
        first_step, first_elapsed = p.pop("first_step", 0), p.pop("first_elapsed", 0.0)
        p["fraction"] = min(step / total, 1.0) if total else 0.0
        # Rate of this session only: a resumed run's earlier steps ran in another process.
        done, spent = step - first_step, p["elapsed"] - first_elapsed
        p["eta_seconds"] = round((total - step) * spent / done, 1) if done > 0 and total else None
        return p
