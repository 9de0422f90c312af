"""How many torch threads to run on a CPU that other processes share."""
from __future__ import annotations

import math
import os

import torch


class ThreadBalancer:
    """Runs torch on every core that other processes leave idle, (train.threads = 0).

    A torch thread waiting for a core another process holds stalls every parallel op: on a busy 2-core machine,
    2 threads took 3-25 s per step where 1 thread steadily took 4.3 s (Gemma 3 270M, batch 8, measured), and
    greedy generation of 24 prompts took 32 s with 2 threads against 12 s with 1 (bench, load ~3.5).
    `limit` caps the count (generation passes the thread count it was given); `begin`/`check` serve any loop.
    """

    def __init__(self, cores: int | None = None, limit: int | None = None) -> None:
        import psutil

        self.cores = cores or os.cpu_count() or 1
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
