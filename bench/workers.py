"""One measurement per fresh Python process: `python -m bench _worker SPEC` runs `worker(spec)` and prints its JSON.

A fresh process per measurement gives each its own peak RSS, its own torch state and no warm caches from the others.
Every worker pins torch to `spec["threads"]` first, the thread policy all contenders share.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULT = "BENCH_RESULT "
ROOT = Path(__file__).resolve().parent.parent


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement described by `spec` in this process."""
    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    kind = spec["kind"]
    if kind == "train":
        from bench.train import run_contender

        return run_contender(spec["contender"], spec["steps"], spec["examples"], spec["seed"], spec["warmup"],
                             spec["pad_to"], spec.get("threads", 0), spec["prompts"],
                             overrides=spec.get("overrides"), compare=spec.get("compare", True))
    if kind == "eval":
        from bench.eval import run_eval

        return run_eval(spec["prompts"], spec["repeats"], threads=spec.get("threads", 0))
    if kind == "gen_levers":
        from bench.levers import run_generation_levers

        return run_generation_levers(spec["prompts"], spec["repeats"])
    if kind == "load":
        from bench.latency import load_seconds

        return load_seconds()
    if kind == "ask":
        from bench.latency import ask_latency

        return ask_latency(spec["repeats"], spec.get("threads", 0))
    if kind == "cli_run":
        from bench.app import cli_run

        return cli_run(spec["overrides"])
    raise ValueError(f"unknown worker kind {kind!r}")


def run_worker(spec: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run `worker(spec)` in a fresh Python process and return what it reported."""
    cmd = [sys.executable, "-m", "bench", "_worker", json.dumps(spec)]
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench worker {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT):])
