"""`python -m bench launch`: what running the studio's training on several processes costs on this machine.

Two contenders on the default run (the embedded model, the default settings) with the same batch per optimiser
step and the same rows: one process on every core (in the app's thread, batch_size x 2) against two processes
of one thread each (`train.num_processes=2`, batch_size each). Targets: the two processes reach at least 0.85 of
the one process's tokens/s (the launcher must cost little), and the first loss point shows within 15 s of Train
being pressed (warm cache: the fp32 model is built once before timing).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.85
TARGET_FIRST_LOSS_SECONDS = 15.0


def timed_run(overrides: dict[str, dict[str, Any]], root: Path) -> dict[str, Any]:
    """Train once through a TrainingJob; seconds to the first loss point, steady tokens/s, final loss."""
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.settings import StudioSettings, apply_overrides

    job = TrainingJob(apply_overrides(StudioSettings(), overrides), root, queue=JobQueue())
    pressed = time.monotonic()
    job.start()
    first = None
    while not job.join(timeout=0.05):
        if first is None and any(r.get("loss") is not None for r in job.history()):
            first = time.monotonic() - pressed
    losses = [r for r in job.history() if r.get("loss") is not None]
    rates = [r["tokens_per_second"] for r in losses[1:] if r.get("tokens_per_second")]  # step 1 warms up
    return {"status": job.status, "error": job.error, "first_loss_seconds": round(first or -1, 1),
            "tokens_per_second": round(statistics.median(rates), 1) if rates else None,
            "final_loss": losses[-1]["loss"] if losses else None, "wall_seconds": round(time.monotonic() - pressed, 1)}


def launch_bench(steps: int, batch: int) -> dict[str, Any]:
    """Both contenders, then the verdicts."""
    from studio.model.embedded import embedded_cache_ready, ensure_embedded_cache

    if not embedded_cache_ready():
        ensure_embedded_cache()  # warm cache: not part of either timing
    common = {"max_steps": steps, "snapshots": 0, "save_steps": 0}
    with tempfile.TemporaryDirectory() as tmp:
        one = timed_run({"train": {**common, "batch_size": batch * 2, "threads": 2}}, Path(tmp))
        two = timed_run({"train": {**common, "batch_size": batch, "threads": 1, "num_processes": 2}}, Path(tmp))
    ratio = round(two["tokens_per_second"] / one["tokens_per_second"], 3) \
        if one["tokens_per_second"] and two["tokens_per_second"] else None
    return {"steps": steps, "batch_per_step": batch * 2, "one_process_two_threads": one,
            "two_processes_one_thread": two, "ratio": ratio,
            "verdicts": {"ratio": ratio is not None and ratio >= TARGET_RATIO,
                         "first_loss": 0 < two["first_loss_seconds"] <= TARGET_FIRST_LOSS_SECONDS}}


def table(figures: dict[str, Any]) -> str:
    """The bench's lines, as printed."""
    one, two = figures["one_process_two_threads"], figures["two_processes_one_thread"]
    return "\n".join([
        f"{figures['steps']} steps of {figures['batch_per_step']} rows, the embedded model",
        f"  1 process x 2 threads : {one['tokens_per_second']} tokens/s, first loss {one['first_loss_seconds']} s, "
        f"final loss {one['final_loss']:.4f}, {one['wall_seconds']} s",
        f"  2 processes x 1 thread: {two['tokens_per_second']} tokens/s, first loss {two['first_loss_seconds']} s, "
        f"final loss {two['final_loss']:.4f}, {two['wall_seconds']} s",
        f"  ratio {figures['ratio']} (target >= {TARGET_RATIO}); first loss with 2 processes "
        f"{two['first_loss_seconds']} s (target <= {TARGET_FIRST_LOSS_SECONDS:.0f} s)",
    ])


def main(argv: list[str]) -> int:
    """Run the launch bench and print its lines and a JSON line; 0 when both targets are met."""
    parser = argparse.ArgumentParser(prog="python -m bench launch", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="optimiser steps per contender (default 8)")
    parser.add_argument("--batch", type=int, default=4, help="rows per process and step (default 4, the default run)")
    args = parser.parse_args(argv)
    figures = launch_bench(args.steps, args.batch)
    print(table(figures), flush=True)
    print(json.dumps(figures))
    return 0 if all(figures["verdicts"].values()) else 1
