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


def xdist_group_of(item) -> str | None:
    """The pytest-xdist group a heavy test runs in: the real-model tests share one worker (one embedded model load,
    one shared run, the cache built first by RUN_FIRST), the browser tests the other; quick tests have none."""
    if item.get_closest_marker("slow") is not None:
        return "slow"
    return "browser" if item.get_closest_marker("browser") is not None else None


def pytest_collection_modifyitems(config, items):
    """Run RUN_FIRST first; give slow and browser tests their larger time limit (unless a test names its own).

    Under pytest-xdist (scripts/test.sh: `-n 2 --dist loadgroup`) the two heavy groups come first, one per worker,
    and the quick tests fill in around them: the longest work starts first, so neither worker idles at the end.
    """
    in_xdist = hasattr(config, "workerinput")
    rank = {"slow": 0, "browser": 1, None: 2}
    items.sort(key=lambda item: (item.nodeid.split("::")[0] not in RUN_FIRST,  # stable: the rest keep their order
                                 rank[xdist_group_of(item)] if in_xdist else 0))
    for item in items:
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
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
def embedded_base():
    """The real embedded model loaded once for inference (a LoadedModel), shared by the slow tests that only read it:
    never wrap it in an adapter or train it (a test that does loads its own)."""
    from studio.model.embedded import ensure_embedded_cache
    from studio.model.loading import load_base_model
    from studio.settings import EMBEDDED_MODEL, ModelSettings

    # The cache first, as the app's warmup builds it: whichever slow test asks first on a clean machine, the model
    # comes from the fp32 cache (tests/model/test_real_model.py checks that load).
    ensure_embedded_cache()
    return load_base_model(ModelSettings(model=EMBEDDED_MODEL), for_training=False)


@pytest.fixture(scope="session")
def first_real_run(tmp_path_factory):
    """One short run of the real embedded model, shared by the slow tests that need a trained adapter
    (tests/model/test_real_model.py, tests/test_after_first_run.py): one run instead of one per module keeps CI short.
    8 steps with a snapshot every 4 (a timeline of base, middle and end), 8 validation rows for its eval loss
    every 4 steps (the timeline answers 4 of them) and 4 held-out prompts: the least that shows it learning."""
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.settings import StudioSettings, apply_overrides

    settings = apply_overrides(StudioSettings(), {
        "data": {"validation_fraction": 0.025, "max_test_examples": 4},
        "train": {"max_steps": 8, "snapshots": 2, "eval_steps": 4},
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
