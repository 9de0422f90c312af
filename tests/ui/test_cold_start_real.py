"""A first start with the real embedded model on an empty STUDIO_HOME: the app builds the model cache in the
background from launch, shows its phases, and a visitor who presses Train at once waits for that build (one build,
never two) and trains. Slow: the build takes half a minute to two, depending on the machine's load.

tests/conftest.py runs this test before the other slow ones, and the cache it builds then becomes this machine's
cache if that is missing, so a clean CI machine builds the embedded model once, not twice.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from gradio_client import Client

from studio.model import embedded
from tests.browser_utils import free_port

pytestmark = pytest.mark.slow


def adopt(built: Path, cache: Path) -> None:
    """Move a finished cache build to `cache` unless something is there already (another build won the race)."""
    if cache.exists() or not all((built / name).is_file() for name in ("config.json", "tokenizer.json")):
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    staged = cache.parent / f".{cache.name}-adopted-{os.getpid()}"
    shutil.move(built, staged)  # a rename on one file system; a copy otherwise, still far quicker than a build
    try:
        os.rename(staged, cache)  # refused when a concurrent build put its folder there first
    except OSError:
        shutil.rmtree(staged, ignore_errors=True)


@pytest.fixture()
def empty_home(tmp_path, monkeypatch):
    """An empty STUDIO_HOME for the test; afterwards its built cache serves the other slow tests."""
    machine_cache = embedded.embedded_cache_dir()
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    yield
    adopt(embedded.embedded_cache_dir(), machine_cache)


def test_first_start_builds_the_cache_in_the_background_and_train_waits_for_it(tmp_path, empty_home):
    from app import build_app, launch_kwargs
    from studio.model.warmup import Warmup

    started = time.perf_counter()
    demo = build_app(runs_root=tmp_path / "runs", warmup=Warmup())  # as `python app.py` starts it
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                **launch_kwargs())
    try:
        c = Client(demo.local_url, verbose=False)
        assert c.predict(api_name="/cache_progress")[0]["state"] == "building"
        c.predict(api_name="/load_data")
        # Enough steps that the job is still training when the test stops it after the first loss point.
        c.predict(train_max_steps=40, train_batch_size=2, data_max_test_examples=2, api_name="/train")
        phases, waited_while_building = set(), False
        deadline = time.monotonic() + 600
        while True:
            cache = c.predict(api_name="/cache_progress")[0]
            job = c.predict(api_name="/progress")[5]
            if cache["state"] == "building":
                phases.add(cache["phase"])
                assert cache["text"].startswith("Preparing the embedded model (first start only): ")
                waited_while_building |= job["status"] in ("queued", "preparing")
            if job.get("step", 0) >= 1 or job["status"] in ("failed", "completed"):
                break
            assert time.monotonic() < deadline, "no loss point within 10 minutes"
            time.sleep(1.0)
        first_loss = time.perf_counter() - started
        assert job["status"] in ("training", "saving", "completed"), job
        assert cache["state"] == "ready" and waited_while_building and phases >= {"tokenizer", "model"}
        models = embedded.embedded_cache_dir().parent
        assert sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock")) == [
            embedded.EMBEDDED_CACHE_NAME]  # one build, no leftover temp folder or status file
        print(f"\nfirst start on an empty STUDIO_HOME -> first loss point {first_loss:.0f} s")
        c.predict(api_name="/stop")
        while c.predict(api_name="/progress")[5]["status"] in ("training", "saving"):  # end its thread cleanly
            time.sleep(0.5)
    finally:
        demo.close()
