"""A process-wide first-come-first-served queue: on 2 cores only one job trains at a time, the rest wait in order."""
from __future__ import annotations

import threading
from typing import Any

from studio.errors import RunError
from studio.waiting import WaitingLine


class JobQueue:
    """First come, first served: one job holds the slot, the others wait in order and can leave while waiting."""

    def __init__(self) -> None:
        self._line = WaitingLine()

    def enqueue(self, job: Any) -> None:
        """Put a job at the back of the line (its position is visible at once)."""
        self._line.join(job)

    def wait_turn(self, job: Any, stop: threading.Event) -> bool:
        """Block until `job` holds the slot (True) or its stop flag is set while waiting (False)."""
        return self._line.wait_turn(job, stop.is_set)

    def release(self, job: Any) -> None:
        """Give the slot back (or leave the line) so the next job starts."""
        self._line.leave(job)

    def position(self, job: Any) -> int:
        """How many jobs are ahead of this one (0 when it is training or not queued)."""
        return self._line.position(job)

    def running(self) -> Any:
        """The job that holds the slot, or None."""
        return self._line.holder()

    def jobs(self) -> list[Any]:
        """The running job (if any) followed by the waiting ones, in order."""
        return self._line.members()

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
