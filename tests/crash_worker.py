"""Crash-test worker: trains the tiny model in a TrainingJob, one slowed step at a time, until the test SIGKILLs it.

Usage: python tests/crash_worker.py RUNS_DIR DATA_FILE [SECONDS_PER_STEP]

`tests/test_crash_resume.py` starts it as a real subprocess, waits for logged steps and a checkpoint, kills it
with SIGKILL and resumes the run in its own process with the same `crash_settings` and `tiny_loader`.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: make `studio` importable
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.settings import StudioSettings, apply_overrides
from studio.train.trainer import FastSFTTrainer
from tests.tiny import tiny_loader

TOTAL_STEPS = 16


def crash_settings(data_file: Path) -> StudioSettings:
    """Checkpoint after every step (so there is always one to resume from), one thread, the tiny model's sizes."""
    return apply_overrides(StudioSettings(), {
        "data": {"dataset": str(data_file), "template": "alpaca", "max_length": 64, "test_fraction": 0.1},
        "train": {"max_steps": TOTAL_STEPS, "batch_size": 2, "save_steps": 1, "threads": 1},
    })


def slow_down_steps(seconds: float) -> None:
    """Make every optimiser step take at least `seconds`, so the test can catch the job between steps."""
    real = FastSFTTrainer.training_step

    def slow_step(self, *args, **kwargs):
        time.sleep(seconds)
        return real(self, *args, **kwargs)

    FastSFTTrainer.training_step = slow_step


def train_until_done(job: TrainingJob) -> int:
    """Print the run id (the test reads it), train to the end, print the outcome; 0 if the job completed."""
    print(job.run_id, flush=True)
    job.start()
    job.join()
    print(job.status, job.error, flush=True)
    return 0 if job.status == "completed" else 1


def main(argv: list[str]) -> int:
    """Train until done (or killed); exit 0 if the job completed."""
    root, data_file = Path(argv[0]), Path(argv[1])
    slow_down_steps(float(argv[2]) if len(argv) > 2 else 0.5)
    job = TrainingJob(crash_settings(data_file), root, queue=JobQueue(), model_loader=tiny_loader)
    return train_until_done(job)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
