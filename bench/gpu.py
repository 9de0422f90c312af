"""`python -m bench gpu`: the studio's training on CUDA, sized to finish within 8 minutes on one GPU machine.

Measures, on the embedded model with the default settings: tokens/s and peak GPU memory on one GPU, the same with
DDP over every visible GPU (when there are two or more: `train.num_processes`), and loss parity with the CPU (the
first steps in fp32 on the GPU against the same steps on the CPU). On a machine without a GPU it refuses in one
sentence (exit code 2): no figure here depends on a GPU being there.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

BUDGET_SECONDS = 8 * 60
NO_GPU = ("No CUDA GPU is visible on this machine, so `python -m bench gpu` has nothing to measure; run it where "
          "torch.cuda.is_available() is true (the CPU figures are `python -m bench` and `python -m bench launch`).")


def run(overrides: dict[str, dict[str, Any]], root: Path) -> dict[str, Any]:
    """One TrainingJob; its steady tokens/s, peak GPU memory of this process, losses and wall time."""
    import torch

    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.settings import StudioSettings, apply_overrides

    torch.cuda.reset_peak_memory_stats()
    start = time.monotonic()
    job = TrainingJob(apply_overrides(StudioSettings(), overrides), root, queue=JobQueue())
    job.start()
    job.join()
    losses = [r for r in job.history() if r.get("loss") is not None]
    rates = sorted(r["tokens_per_second"] for r in losses[1:] if r.get("tokens_per_second"))
    return {"status": job.status, "error": job.error, "losses": [r["loss"] for r in losses],
            "tokens_per_second": rates[len(rates) // 2] if rates else None,
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "wall_seconds": round(time.monotonic() - start, 1)}


def cpu_losses(steps: int, root: Path) -> list[float]:
    """The same first steps on the CPU (fp32), in a child process that sees no GPU."""
    import os
    import subprocess
    import sys

    code = ("import json,sys; from bench.gpu import run_cpu; print(json.dumps(run_cpu(int(sys.argv[1]), sys.argv[2])))")
    out = subprocess.run([sys.executable, "-c", code, str(steps), str(root)], capture_output=True, text=True,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=BUDGET_SECONDS, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cpu(steps: int, root: str) -> list[float]:
    """(In the child) the CPU run's losses."""
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.settings import StudioSettings, apply_overrides

    settings = apply_overrides(StudioSettings(), {"train": {"max_steps": steps, "snapshots": 0, "save_steps": 0}})
    job = TrainingJob(settings, Path(root), queue=JobQueue())
    job.start()
    job.join()
    return [r["loss"] for r in job.history() if r.get("loss") is not None]


def gpu_bench(steps: int, parity_steps: int) -> dict[str, Any]:
    """Single GPU (auto precision and fp32), DDP over every GPU, parity with the CPU."""
    import torch

    from studio.model.embedded import ensure_embedded_cache

    ensure_embedded_cache()
    gpus = torch.cuda.device_count()
    common = {"max_steps": steps, "snapshots": 0, "save_steps": 0}
    out: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "gpus": gpus, "steps": steps}
    with tempfile.TemporaryDirectory() as tmp:
        out["single"] = run({"train": common}, Path(tmp))
        if gpus > 1:
            out["ddp"] = run({"train": {**common, "num_processes": gpus}}, Path(tmp))
        fp32 = run({"train": {**common, "max_steps": parity_steps, "precision": "fp32"}}, Path(tmp))
        cpu = cpu_losses(parity_steps, Path(tmp))
    gaps = [abs(a - b) / abs(b) for a, b in zip(fp32["losses"], cpu) if b]
    out["parity"] = {"gpu_fp32": fp32["losses"], "cpu": cpu, "max_relative_gap": max(gaps) if gaps else None}
    return out


def main(argv: list[str]) -> int:
    """Refuse without a GPU (exit 2); else run the GPU bench and print a JSON line."""
    import torch

    parser = argparse.ArgumentParser(prog="python -m bench gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per GPU contender (default 30)")
    parser.add_argument("--parity-steps", type=int, default=4, help="steps compared with the CPU (default 4)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_GPU, flush=True)
        return 2
    figures = gpu_bench(args.steps, args.parity_steps)
    print(json.dumps(figures), flush=True)
    return 0 if figures["single"]["status"] == "completed" else 1
