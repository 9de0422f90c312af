"""A process-wide first-come-first-served queue: on 2 cores only one job trains at a time, the rest wait in order."""
from __future__ import annotations

import threading
from typing import Any

from studio.errors import RunError


class JobQueue:
    """First come, first served: one job holds the slot, the others wait in order and can leave while waiting."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: list[Any] = []
        self._running: Any = None

    def enqueue(self, job: Any) -> None:
        """Put a job at the back of the line (its position is visible at once)."""
        with self._cond:
            if job is not self._running and job not in self._waiting:
                self._waiting.append(job)

    def wait_turn(self, job: Any, stop: threading.Event) -> bool:
        """Block until `job` holds the slot (True) or its stop flag is set while waiting (False)."""
        with self._cond:
            self.enqueue(job)
            while self._running is not None or self._waiting[0] is not job:
                if stop.is_set():
                    self._waiting.remove(job)
                    self._cond.notify_all()
                    return False
                self._cond.wait(timeout=0.2)
            self._waiting.pop(0)
            self._running = job
            return True

    def release(self, job: Any) -> None:
        """Give the slot back (or leave the line) so the next job starts."""
        with self._cond:
            if self._running is job:
                self._running = None
            elif job in self._waiting:
                self._waiting.remove(job)
            self._cond.notify_all()

    def position(self, job: Any) -> int:
        """How many jobs are ahead of this one (0 when it is training or not queued)."""
        with self._cond:
            if job not in self._waiting:
                return 0
            return self._waiting.index(job) + (self._running is not None)

    def running(self) -> Any:
        """The job that holds the slot, or None."""
        with self._cond:
            return self._running

    def jobs(self) -> list[Any]:
        """The running job (if any) followed by the waiting ones, in order."""
        with self._cond:
            return ([self._running] if self._running is not None else []) + list(self._waiting)

    def stop(self, run_id: str, owner: str) -> None:
        """Stop a queued or running job by run id on behalf of `owner` (RunError if it is someone else's)."""
        for job in self.jobs():
            if job.run_id == run_id:
                job.stop(owner=owner)
                return
        raise RunError(f"Run {run_id} is not queued or training.")


_DEFAULT_QUEUE = JobQueue()


def default_queue() -> JobQueue:
    """The process-wide queue every job uses unless given its own."""
    return _DEFAULT_QUEUE


def queue_position(job: Any) -> int:
    """How many jobs are ahead of `job` in its queue (0: training now or not waiting)."""
    return job.queue.position(job)
