"""The one-at-a-time queue: first come first served, leaving the line, stopping by run id (studio.jobqueue)."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from studio.errors import RunError
from studio.jobqueue import JobQueue, queue_position


def job(run_id: str, queue: JobQueue, owner: str = "me") -> SimpleNamespace:
    """A stand-in job: what the queue reads (run_id, queue) and a stop that records who asked."""
    stopped: list[str] = []
    return SimpleNamespace(run_id=run_id, queue=queue, stopped=stopped, stop=lambda owner=None: stopped.append(owner))


def test_first_come_first_served():
    queue = JobQueue()
    a, b, c = (job(name, queue) for name in "abc")
    assert queue.wait_turn(a, threading.Event())
    queue.enqueue(b)
    queue.enqueue(c)
    queue.enqueue(b)  # enqueueing twice keeps one place
    assert queue.running() is a and queue.jobs() == [a, b, c]
    assert [queue_position(j) for j in (a, b, c)] == [0, 1, 2]
    order: list[str] = []
    threads = [threading.Thread(target=lambda j=j: (queue.wait_turn(j, threading.Event()), order.append(j.run_id),
                                                    queue.release(j))) for j in (c, b)]
    for t in threads:
        t.start()
    queue.release(a)
    for t in threads:
        t.join(timeout=5)
    assert order == ["b", "c"] and queue.running() is None and queue.jobs() == []


def test_a_waiting_job_leaves_the_line_when_stopped():
    queue = JobQueue()
    a, b = job("a", queue), job("b", queue)
    queue.wait_turn(a, threading.Event())
    stop = threading.Event()
    stop.set()
    assert queue.wait_turn(b, stop) is False
    assert queue.jobs() == [a] and queue_position(b) == 0


def test_stop_by_run_id_passes_the_owner_and_unknown_ids_are_refused():
    queue = JobQueue()
    a = job("a", queue)
    queue.wait_turn(a, threading.Event())
    queue.stop("a", owner="alice")
    assert a.stopped == ["alice"]
    with pytest.raises(RunError, match="not queued or training"):
        queue.stop("zzz", owner="alice")


def test_release_of_a_waiting_job_removes_it():
    queue = JobQueue()
    a, b = job("a", queue), job("b", queue)
    queue.wait_turn(a, threading.Event())
    queue.enqueue(b)
    queue.release(b)
    assert queue.jobs() == [a]
