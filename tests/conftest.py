"""Shared fixtures: a tiny causal LM and tokenizer built in-process (no download), and temp run folders."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests import tiny
from tests.tiny import make_tiny_model, make_tiny_tokenizer

# Per-test time limits (pytest-timeout, setup included) by marker; quick tests get pyproject.toml's `timeout`. A slow
# test may build the embedded model's cache and run the shared real-model run in its setup; a browser test may
# train its module's studio first. Each limit is a few times what the test takes on a busy 2-core machine.
TIMEOUTS = {"slow": 600, "browser": 300}


# Run before the other tests: the cold-start test builds the embedded model's cache in an empty STUDIO_HOME and then
# hands it to the machine's cache when that is missing, which spares the real-model tests after it a second build.
RUN_FIRST = ("tests/ui/test_cold_start_real.py",)


def pytest_collection_modifyitems(config, items):
    """Run RUN_FIRST first; give slow and browser tests their larger time limit (unless a test names its own)."""
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in RUN_FIRST)  # stable: the rest keep their order
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        limits = [seconds for marker, seconds in TIMEOUTS.items() if item.get_closest_marker(marker) is not None]
        if limits:
            item.add_marker(pytest.mark.timeout(max(limits)))


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A small BPE tokenizer trained on the fly, with <eos>/<pad> like Gemma's."""
    return make_tiny_tokenizer()


@pytest.fixture()
def tiny_model(tiny_tokenizer):
    """A fresh 2-layer Gemma3-style causal LM sized to the tiny tokenizer."""
    return make_tiny_model(tiny_tokenizer)


@pytest.fixture()
def runs_dir(tmp_path):
    """An empty runs/ folder for one test."""
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def first_real_run(tmp_path_factory):
    """One short run of the real embedded model (12 steps, snapshots every 4, 4 held-out prompts), shared by the slow
    tests that need a trained adapter (tests/model/test_real_model.py, tests/test_after_first_run.py): one run instead
    of one per module keeps CI short."""
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.settings import StudioSettings, apply_overrides

    settings = apply_overrides(StudioSettings(), {
        "data": {"validation_fraction": 0.1, "max_test_examples": 4},
        "train": {"max_steps": 12, "snapshots": 3, "eval_steps": 4},
        "generation": {"max_new_tokens": 12},
    })
    job = TrainingJob(settings, tmp_path_factory.mktemp("runs"), queue=JobQueue())
    job.start()
    assert job.join(timeout=900) and job.status == "completed", job.error
    return job


@pytest.fixture()
def tiny_loader():
    """The model loader to inject (`model_loader=`) wherever the studio would load the real base model."""
    return tiny.tiny_loader
