"""`python -m bench launch` (and the `launch` part of `python -m bench`): what training on several processes costs.

Two contenders on the default run (the embedded model, the default settings) with the same batch per optimiser
step and the same rows: one process of two threads (in the app's thread, batch_size x 2) against two processes of
one thread each (`train.num_processes=2`, batch_size each). Both run once per round, the order reversed every other
round, and the ratio is taken inside a round (bench/rounds.py says why). Targets, on the medians over the rounds
(`bench.summary.TARGETS`): the two processes reach at least 0.85 of the one process's tokens/s (the launcher must
cost little), and the first loss point with two processes shows within 15 s of Train being pressed (warm cache: the
fp32 model is built once before timing).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.rounds import DEFAULT_ROUNDS, format_spread, ratios, round_order, spread
from bench.summary import TARGETS, launch_verdicts

CONTENDERS = ("one_process_two_threads", "two_processes_one_thread")
LABELS = {"one_process_two_threads": "1 process x 2 threads", "two_processes_one_thread": "2 processes x 1 thread"}
TimedRun = Callable[[dict[str, dict[str, Any]], Path], dict[str, Any]]


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


def contender_overrides(name: str, steps: int, batch: int) -> dict[str, dict[str, Any]]:
    """The settings overrides of one contender: the same rows per optimiser step for both."""
    common = {"max_steps": steps, "snapshots": 0, "save_steps": 0}
    if name == "one_process_two_threads":
        return {"train": {**common, "batch_size": batch * 2, "threads": 2}}
    return {"train": {**common, "batch_size": batch, "threads": 1, "num_processes": 2}}


def launch_rounds(steps: int, batch: int, rounds: int, say: Callable[[str], None] = print,
                  run: TimedRun = timed_run) -> dict[str, Any]:
    """Both contenders once per round for `rounds` rounds (the order reversed every other round): the raw runs."""
    from studio.model.embedded import embedded_cache_ready, ensure_embedded_cache

    if run is timed_run and not embedded_cache_ready():
        ensure_embedded_cache()  # warm cache: not part of either timing
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for name in round_order(CONTENDERS, round_):
                result = run(contender_overrides(name, steps, batch), Path(tmp))
                runs[name].append(result)
                say(f"  round {round_ + 1} {LABELS[name]:22s} {result['tokens_per_second']} tokens/s, first loss "
                    f"{result['first_loss_seconds']} s, {result['status']}")
    return {"steps": steps, "batch_per_step": batch * 2, "runs": runs}


def summarise_launch(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians over the rounds, the per-round ratio of the two processes to the one, and both verdicts (pure)."""
    one, two = (raw["runs"][name] for name in CONTENDERS)
    completed = all(r["status"] == "completed" and r["tokens_per_second"] for r in one + two)
    out: dict[str, Any] = {"steps": raw["steps"], "batch_per_step": raw["batch_per_step"], "rounds": len(one),
                           "completed": completed, "errors": [r["error"] for r in one + two if r.get("error")]}
    for name, runs in zip(CONTENDERS, (one, two)):
        out[name] = {key: statistics.median(r[key] for r in runs if r[key] is not None)
                     if any(r[key] is not None for r in runs) else None
                     for key in ("tokens_per_second", "first_loss_seconds", "final_loss", "wall_seconds")}
    if completed:
        out["ratio_range"] = spread(ratios([r["tokens_per_second"] for r in two],
                                           [r["tokens_per_second"] for r in one]))
        out["ratio"] = out["ratio_range"]["median"]
        out["first_loss_range"] = spread(r["first_loss_seconds"] for r in two)
        out["first_loss_seconds"] = out["first_loss_range"]["median"]
    return out


def launch_table(figures: dict[str, Any]) -> list[str]:
    """The launcher's lines, as `python -m bench` and `python -m bench launch` print them."""
    lines = [f"Launcher ({figures['steps']} steps of {figures['batch_per_step']} rows on the embedded model, the "
             f"median of {figures['rounds']} round(s))"]
    for name in CONTENDERS:
        c = figures[name]
        loss = f"{c['final_loss']:.4f}" if c["final_loss"] is not None else "-"
        lines.append(f"  {LABELS[name]:22s} {c['tokens_per_second']} tokens/s, first loss point "
                     f"{c['first_loss_seconds']} s after Train, final loss {loss}, {c['wall_seconds']} s in all")
    if not figures["completed"]:
        return lines + [f"  a run did not complete: {'; '.join(figures['errors']) or 'no tokens/s recorded'}"]
    return lines + [
        f"  2 processes / 1 process, round by round: {format_spread(figures['ratio_range'])}  target >= "
        f"{TARGETS['two_processes_vs_one']:.2f}x",
        f"  first loss point with 2 processes: {format_spread(figures['first_loss_range'], '{:.1f} s')}  target <= "
        f"{TARGETS['first_loss_two_processes_s']:g} s",
    ]


def main(argv: list[str]) -> int:
    """Run the launch bench alone and print its lines, its verdicts and a JSON line; 0 when both targets are met."""
    parser = argparse.ArgumentParser(prog="python -m bench launch", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps per contender (default 6)")
    parser.add_argument("--batch", type=int, default=4, help="rows per process and step (default 4, the default run)")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"interleaved rounds of both contenders (default {DEFAULT_ROUNDS})")
    args = parser.parse_args(argv)
    figures = summarise_launch(launch_rounds(args.steps, args.batch, args.rounds,
                                             say=lambda line: print(line, flush=True)))
    figures["verdicts"] = launch_verdicts(figures)
    print("\n".join(launch_table(figures)), flush=True)
    for name, ok in figures["verdicts"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(json.dumps(figures))
    return 0 if all(figures["verdicts"].values()) else 1
