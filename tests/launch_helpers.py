"""Helpers for tests of runs on several processes (tests/train/test_distributed.py): what the launched processes
import by name (`slow_tiny_loader`), the settings of such a run, and finding or killing its ranks."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil

from studio.model.loading import LoadedModel
from studio.settings import StudioSettings, apply_overrides
from studio.train.processes import runs_launch
from tests.tiny import WORDS, make_tiny_model, make_tiny_tokenizer, write_uppercase_rows

STEP_DELAY = 0.3  # seconds added to each training forward by `slow_tiny_loader`, so a test can act mid-run


def slow_tiny_loader(settings: Any = None, token: str | None = None, **kwargs: Any) -> LoadedModel:
    """The tiny model, each training forward slowed by STEP_DELAY (importable by name in the launched processes)."""
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_model(tokenizer)

    def slow_down(module: Any, args: Any) -> None:
        if module.training:
            time.sleep(STEP_DELAY)

    model.get_input_embeddings().register_forward_pre_hook(slow_down)  # every forward path uses the embedding
    return LoadedModel(model, tokenizer, "tiny", "local", 0.0, False)


def launch_settings(tmp: Path, processes: int = 2, **train: Any) -> StudioSettings:
    """20 uppercase rows (18 to train on), the tiny model's sizes, one thread a process."""
    data = write_uppercase_rows(tmp / "words.jsonl", WORDS[:20])
    return apply_overrides(StudioSettings(), {
        "data": {"dataset": str(data), "template": "alpaca", "max_length": 64, "test_fraction": 0.1},
        "train": {"max_steps": 4, "batch_size": 2, "threads": 1, "num_processes": processes, **train},
    })


def ranks() -> dict[int, psutil.Process]:
    """The launched worker processes under this process, by rank: the children of a launcher, numbered by RANK
    when their environment shows it (ranks `accelerate launch` started) and else in the order they were forked."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if runs_launch(child.cmdline()) and runs_launch(child.parent().cmdline()):
                found.append((int(child.environ().get("RANK", -1)), child.pid, child))
        except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
            continue
    found.sort(key=lambda item: (item[0], item[1]))
    return {rank: child for rank, (_, _, child) in enumerate(found)}


def wait_for(condition: Any, timeout: float = 120, every: float = 0.1) -> None:
    """Poll `condition()` until it is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"not reached in {timeout} s")


def no_workers_left() -> bool:
    """True once no process on this machine runs a launched studio worker that this test started."""
    return not any(runs_launch(p.info["cmdline"]) and p.info["pid"] != os.getpid() and _mine(p)
                   for p in psutil.process_iter(["cmdline", "pid"]))


def _mine(process: psutil.Process) -> bool:
    try:
        return process.environ().get("STUDIO_TEST_MARK") == os.environ.get("STUDIO_TEST_MARK", "-")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
