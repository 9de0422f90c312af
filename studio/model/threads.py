"""How many torch threads a run uses: pinned for the whole run by default, adaptive only when asked for.

Why pinned: the thread count decides how a CPU splits every matrix product and reduction, so it changes the order
of float sums and with it the last bits of every result. A run that keeps one thread count from its first step to
its last answer is bit-reproducible on the same machine; the count is recorded (run.json, report, bundle) so the run
can be reproduced under a different machine load by asking for the same number.

`torch.set_num_threads` acts on the calling thread (OpenMP keeps the count per thread once a thread has run a
parallel op), so a training thread and a Compare handler in the same server each keep their own pinned count.

Model work outside a training run's own thread runs `on_own_thread`. A thread that runs a parallel torch op keeps
its OpenMP workers until the thread ends, and once libgomp (torch's OpenMP) manages more threads than there are
cores, every worker of every pool sleeps between parallel regions instead of spinning: each of the thousands of
small ops of a training step then waits for a wake-up. Measured here (2 cores): one 64 x 64 product on the main
thread before training made the demo's steps 1.5-1.9x slower (1.55 s against 0.83 s). A web server reuses its
handler threads (a Compare and then "Train more"), so a thread that ends with the work is what gives the cores back.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from studio.settings import TrainSettings

T = TypeVar("T")
PINNED, BALANCED = "pinned", "balanced"
# Whether generation inside `use_threads` may adapt its thread count; context-local, so one handler's policy never
# leaks into another thread (a new thread starts without it, which means pinned).
_balancing: contextvars.ContextVar[bool] = contextvars.ContextVar("studio_balance_threads", default=False)


def on_own_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` on a new thread that ends with it (its OpenMP workers too), in the caller's context.

    The caller's context variables come along (a web handler's request and progress, the thread policy); its
    result or exception is the caller's.
    """
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"model-work-{getattr(fn, '__name__', 'fn')}", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadPolicy:
    """A run's CPU thread count and whether it may adapt it (`balance`, not bit-reproducible)."""

    threads: int
    balance: bool = False

    @property
    def name(self) -> str:
        """"pinned" or "balanced" (the word run.json, the report and the bundle use)."""
        return BALANCED if self.balance else PINNED

    def describe(self) -> str:
        """One phrase for logs and reports, e.g. "2 CPU threads, pinned"."""
        plural = "s" if self.threads != 1 else ""
        if self.balance:
            return f"up to {self.threads} CPU thread{plural}, balanced against other processes (not reproducible)"
        return f"{self.threads} CPU thread{plural}, pinned"


def thread_policy(train: TrainSettings, recorded: int | None = None) -> ThreadPolicy:
    """The policy of a run: `recorded` (a resumed or compared run keeps its count), else train.threads, else
    every available core."""
    return ThreadPolicy(int(recorded or train.threads or available_cores()), train.balance_threads)


@contextlib.contextmanager
def use_threads(policy: ThreadPolicy) -> Iterator[ThreadPolicy]:
    """Run torch on `policy.threads` threads in this thread until the block ends, then restore the previous count."""
    previous = torch.get_num_threads()
    token = _balancing.set(policy.balance)
    torch.set_num_threads(policy.threads)
    try:
        yield policy
    finally:
        _balancing.reset(token)
        torch.set_num_threads(previous)


def balancing() -> bool:
    """True inside `use_threads` of a balanced policy: loops may then adapt the thread count (ThreadBalancer)."""
    return _balancing.get()


class ThreadBalancer:
    """Runs torch on every core that other processes leave idle (opt-in: train.balance_threads).

    A torch thread waiting for a core another process holds stalls every parallel op: on a busy machine, fewer
    threads than cores can train and generate faster, and far more steadily, than one thread per core (`python -m
    bench levers` measures the adaptive thread count against the pinned default: the README's levers table). The
    price: each change of the count changes float summation order, so a balanced run is not bit-reproducible.
    `limit` caps the count (generation passes the thread count it was given); `begin`/`check` serve any loop.
    """

    def __init__(self, cores: int | None = None, limit: int | None = None) -> None:
        import psutil

        self.cores = cores or available_cores()
        self.limit = limit or self.cores
        self._process, self._psutil = psutil.Process(), psutil

    def begin(self, sample_seconds: float = 0.3) -> int:
        """Sample the machine for a moment (this process idle) and set the thread count."""
        self._process.cpu_percent(None)
        return self._set(self._psutil.cpu_percent(interval=sample_seconds), self._process.cpu_percent(None))

    def check(self) -> int:
        """Adapt to what the other processes used since the last check."""
        return self._set(self._psutil.cpu_percent(None), self._process.cpu_percent(None))

    def _set(self, machine_percent: float, own_percent: float) -> int:
        # machine_percent averages over cores; own_percent counts one core as 100.
        others = max(0.0, machine_percent * self.cores - own_percent) / 100
        threads = max(1, min(self.limit, self.cores - math.ceil(others - 0.3)))
        torch.set_num_threads(threads)
        return threads
