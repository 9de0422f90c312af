"""How many torch threads a shared CPU leaves us (studio.model.threads)."""
from __future__ import annotations

import pytest
import torch

from studio.model.threads import ThreadBalancer


@pytest.mark.parametrize(("machine", "own", "threads"), [(50, 100, 2), (100, 100, 1), (60, 100, 2), (100, 0, 1)])
def test_thread_balancer_leaves_cores_busy_elsewhere_alone(machine, own, threads):
    balancer = ThreadBalancer(cores=2)
    balancer._set(machine_percent=machine, own_percent=own)
    assert torch.get_num_threads() == threads


def test_the_policy_resolves_the_thread_count_once():
    from studio.model.threads import available_cores, thread_policy
    from studio.settings import TrainSettings

    assert thread_policy(TrainSettings()).threads == available_cores() >= 1
    assert thread_policy(TrainSettings(threads=3)).threads == 3
    # A resumed or compared run keeps the count it trained with, whatever the setting says now.
    assert thread_policy(TrainSettings(threads=3), recorded=1).threads == 1
    pinned, balanced = thread_policy(TrainSettings(threads=2)), thread_policy(TrainSettings(balance_threads=True))
    assert (pinned.name, balanced.name) == ("pinned", "balanced")
    assert pinned.describe() == "2 CPU threads, pinned" and "not reproducible" in balanced.describe()


def test_use_threads_pins_this_thread_and_restores_it():
    from studio.model.threads import ThreadPolicy, balancing, use_threads

    before = torch.get_num_threads()
    with use_threads(ThreadPolicy(1)):
        assert torch.get_num_threads() == 1 and not balancing()
        with use_threads(ThreadPolicy(2, balance=True)):
            assert torch.get_num_threads() == 2 and balancing()
        assert torch.get_num_threads() == 1 and not balancing()
    assert torch.get_num_threads() == before


def test_on_own_thread_returns_raises_and_carries_the_callers_context():
    import contextvars
    import threading

    from studio.errors import StudioError
    from studio.model.threads import on_own_thread

    seen = contextvars.ContextVar("seen", default="unset")
    seen.set("the caller's")
    caller = threading.current_thread()
    assert on_own_thread(lambda x, y=0: (x + y, seen.get(), threading.current_thread() is not caller), 1, y=2) == (
        3, "the caller's", True)
    with pytest.raises(StudioError, match="bad input"):
        on_own_thread(lambda: (_ for _ in ()).throw(StudioError("bad input")))


def _tasks() -> int:
    import os

    return len(os.listdir("/proc/self/task"))


def _settled(expected: int, seconds: float = 5.0) -> int:
    import time

    deadline = time.monotonic() + seconds
    while _tasks() != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return _tasks()


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/task") or torch.get_num_threads() < 2,
                    reason="counts this process's OS threads on Linux with a parallel torch")
def test_the_openmp_workers_of_work_on_its_own_thread_end_with_it():
    import threading

    from studio.model.threads import on_own_thread

    def parallel_work() -> None:
        torch.set_num_threads(2)
        x = torch.randn(256, 2048)
        for _ in range(20):
            torch.nn.functional.gelu(x) * x  # noqa: B018 - elementwise ops run in an OpenMP parallel region

    before = _settled(_tasks())
    on_own_thread(parallel_work)
    assert _settled(before) == before
    # The same work on a thread that lives on keeps its OpenMP workers (what on_own_thread is for).
    done, release = threading.Event(), threading.Event()
    keeper = threading.Thread(target=lambda: (parallel_work(), done.set(), release.wait()))
    keeper.start()
    done.wait()
    assert _tasks() >= before + 2  # the thread itself and at least one OpenMP worker
    release.set()
    keeper.join()
    assert _settled(before) == before
