"""Reproducibility worker: one short training run + Compare, then the adapter's hash and the answers as JSON.

Usage: python tests/repro_worker.py RUNS_DIR DATA_FILE [--embedded]

`tests/test_reproducibility.py` runs `train_and_compare` in its own process and through this script in a fresh one,
and requires the two to agree bit for bit. Without --embedded the tiny test model is used, loaded through a loader
that leaves torch's global generator in a random state (so only the seed set before LoRA wraps the model can make
the adapter's initial weights repeat).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

# Run as a script, Python puts tests/ first on the path, where tests/evaluate/ would shadow the `evaluate` library:
# swap it for the repository root, which makes `studio` importable.
sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from studio.evaluate.comparison import load_comparison
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.pipeline import compare_run, from_job
from studio.runs import RunFolder
from studio.settings import StudioSettings, apply_overrides
from tests.tiny import tiny_loader

RESULT = "REPRO_RESULT "


def scrambled_loader(model_settings: Any = None, token: str | None = None, **kwargs: Any) -> Any:
    """The tiny model, with torch's global generator left somewhere random afterwards (as a busy process would)."""
    loaded = tiny_loader(model_settings, token)
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    torch.rand(int.from_bytes(os.urandom(1), "little") + 1)
    return loaded


def repro_settings(data_file: Path | None, embedded: bool = False, **train: Any) -> StudioSettings:
    """A short run with LoRA dropout on (so dropout masks must repeat too) and the default thread policy."""
    if embedded:  # the default data and model, cut short: 2 steps, 4 held-out prompts, 8 new tokens
        return apply_overrides(StudioSettings(), {"train": {"max_steps": 2, **train}, "lora": {"dropout": 0.1},
                                                  "data": {"max_test_examples": 4},
                                                  "generation": {"max_new_tokens": 8}})
    return apply_overrides(StudioSettings(), {
        "data": {"dataset": str(data_file), "template": "alpaca", "max_length": 64, "test_fraction": 0.2},
        "train": {"max_steps": 4, "batch_size": 2, **train}, "lora": {"dropout": 0.1},
        "generation": {"max_new_tokens": 6},
    })


def adapter_sha256(run_dir: Path) -> str:
    """sha256 of the saved adapter weights file (bitwise identity of every tensor, names and order)."""
    folder = RunFolder(run_dir).adapter_dir
    return hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()


def train_and_compare(root: Path, settings: StudioSettings, embedded: bool = False) -> dict[str, Any]:
    """Train, compare, and return the adapter hash, the answers of both models and the recorded thread count."""
    job = TrainingJob(settings, root, queue=JobQueue(), model_loader=None if embedded else scrambled_loader)
    job.start()
    job.join()
    if job.status != "completed":
        raise RuntimeError(f"the run ended {job.status}: {job.error}")
    compare_run(from_job(job))
    folder = RunFolder(job.run_dir)
    run, rows = folder.read_json(folder.run_file), load_comparison(job.run_dir).rows
    return {"adapter": adapter_sha256(job.run_dir), "threads": run["threads"], "policy": run["thread_policy"],
            "answers": [[r.base, r.tuned] for r in rows],
            "comparison_rows": hashlib.sha256(folder.comparison_rows_file.read_bytes()).hexdigest()}


def main(argv: list[str]) -> int:
    """Run once and print the result line."""
    embedded = "--embedded" in argv
    root, data_file = Path(argv[0]), Path(argv[1]) if len(argv) > 1 and argv[1] != "--embedded" else None
    print(RESULT + json.dumps(train_and_compare(root, repro_settings(data_file, embedded), embedded)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
