"""Crash-test app for runs on several processes: starts a 2-process run of the slowed tiny model and waits, until
the test SIGKILLs it (tests/train/test_distributed.py).

Usage: python tests/launch_crash_worker.py RUNS_DIR WORK_DIR
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: make `studio` importable
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from tests.crash_worker import train_until_done
from tests.launch_helpers import launch_settings, slow_tiny_loader

TOTAL_STEPS = 12


def main(argv: list[str]) -> int:
    """Train until done (or killed); exit 0 if the job completed."""
    settings = launch_settings(Path(argv[1]), max_steps=TOTAL_STEPS, save_steps=1, snapshots=0)
    job = TrainingJob(settings, Path(argv[0]), queue=JobQueue(), model_loader=slow_tiny_loader)
    return train_until_done(job)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
