"""Empty states and the cold-start banner (ui/notices.py): pure renderers and /cache_progress with a slow fake build."""
from __future__ import annotations

import threading
import time

import pandas as pd
from gradio_client import Client

from studio.model.cache_progress import CacheProgress, progress_of
from studio.model.warmup import Warmup
from tests.browser_utils import launch_studio, slow_fake_build
from ui.notices import NO_RUNS, cache_banner_html, empty_html, runs_note


def test_empty_states_say_what_to_do_next():
    assert empty_html(("No run to compare yet.", "Train a run first, or open one from Runs.")) == (
        '<div class="empty-state"><strong>No run to compare yet.</strong> Train a run first, or open one from '
        "Runs.</div>")
    assert "Start training on the Train tab" in NO_RUNS[1]
    assert runs_note(pd.DataFrame(columns=["Run"]))["visible"] is True
    assert runs_note(pd.DataFrame([["r1"]], columns=["Run"]))["visible"] is False


def test_the_banner_shows_only_while_building_or_failed():
    assert cache_banner_html(None) == cache_banner_html(CacheProgress("ready")) == ""
    building = cache_banner_html(progress_of("model", 0.0, 10.0, now=12.0))
    assert 'class="progress-fill" style="width:' in building
    assert "Preparing the embedded model (first start only): 12 s of about" in building
    failed = cache_banner_html(CacheProgress("failed", error="Disk full."))
    assert 'class="cold-start failed"' in failed and "could not be prepared: Disk full." in failed


def test_cache_progress_endpoint_follows_a_slow_build(tmp_path):
    seen = threading.Event()  # the build moves to its next phase once this test has seen the current one
    ensure, ready = slow_fake_build(1.0, gate=seen)
    demo, url = launch_studio(tmp_path / "runs", warmup=Warmup(ensure=ensure, ready=ready))
    try:
        c = Client(url, verbose=False)
        phases = set()
        deadline = time.monotonic() + 60
        while True:
            details, model_notice, train_notice, demo_notice, _timer = c.predict(api_name="/cache_progress")
            if details["state"] != "building":
                break
            phases.add(details["phase"])
            seen.set()
            assert details["text"] in model_notice and model_notice == demo_notice
            assert details["text"] in train_notice and "No data loaded yet." in train_notice
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert details["state"] == "ready" and len(phases) >= 2
        assert model_notice == "" and "progress-fill" not in train_notice
    finally:
        demo.close()


def test_building_the_app_alone_starts_no_cache_build(tmp_path, monkeypatch):
    from app import build_app
    from studio.model import embedded

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    studio = build_app(runs_root=tmp_path / "runs")  # the real loaders, no warmup given: only `main` starts one
    time.sleep(0.3)
    assert not embedded.embedded_build_running() and not (tmp_path / "home").exists()
    studio.close()
