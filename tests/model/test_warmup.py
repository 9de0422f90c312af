"""The background cache build (studio.model.warmup) with an injected slow build, and the real cache's lock/status."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from studio.model import embedded
from studio.model.cache_progress import read_status
from studio.model.warmup import Warmup, embedded_progress
from tests.tiny import save_tiny_model


def fake_build(seconds: float, fail: bool = False):
    """(ensure, ready, done): a build that walks every phase in `seconds`, then is ready (or raises)."""
    done = threading.Event()

    def ensure(on_phase=None):
        for key in ("assemble", "tokenizer", "model", "save"):
            on_phase(key)
            time.sleep(seconds / 4)
        if fail:
            raise OSError("No space left on device")
        done.set()

    return ensure, done.is_set, done


def test_warmup_reports_each_phase_then_ready():
    ensure, ready, _ = fake_build(0.8)
    warmup = Warmup(ensure=ensure, ready=ready)
    assert warmup.progress().state == "missing"
    assert warmup.start() and not warmup.start()  # one build only
    phases = set()
    while not warmup.wait(0.02):
        p = warmup.progress()
        if p.building:
            phases.add(p.phase)
            assert p.text().startswith("Preparing the embedded model (first start only): ")
    assert phases >= {"tokenizer", "model"} and warmup.progress().state == "ready"


def test_a_ready_cache_starts_nothing_and_a_failed_build_says_why():
    assert not Warmup(ensure=lambda on_phase=None: None, ready=lambda: True).start()
    ensure, ready, _ = fake_build(0.1, fail=True)
    warmup = Warmup(ensure=ensure, ready=ready)
    warmup.start()
    warmup.wait(10)
    p = warmup.progress()
    assert p.state == "failed" and p.error == "No space left on device. Training will try again when it starts."
    assert p.text().startswith("The embedded model could not be prepared: No space left")


def test_a_build_elsewhere_is_seen_through_its_lock_and_status_file(home, tiny_tokenizer, monkeypatch):
    entered, release = threading.Event(), threading.Event()

    def slow_build(out: Path, phase) -> None:
        phase("assemble")
        phase("tokenizer")
        entered.set()
        release.wait(10)
        save_tiny_model(out, tiny_tokenizer)

    monkeypatch.setattr(embedded, "_build_embedded_copy", slow_build)
    assert embedded_progress().state == "missing" and not embedded.embedded_build_running()
    builder = threading.Thread(target=embedded.ensure_embedded_cache)  # e.g. a training job of this process
    builder.start()
    entered.wait(10)
    waiting = Warmup()  # the app's warmup: it waits for that build rather than start a second one
    assert waiting.start()
    p = waiting.progress()
    assert embedded.embedded_build_running() and p.building and p.phase == "tokenizer"
    assert read_status(embedded.embedded_status_file())["phase"] == "tokenizer"
    release.set()
    builder.join(10)
    assert waiting.wait(10) and waiting.progress().state == "ready" == embedded_progress().state
    assert not embedded.embedded_status_file().exists() and not embedded.embedded_build_running()


def test_a_build_that_has_not_reached_its_first_phase_already_reads_as_building():
    release = threading.Event()
    warmup = Warmup(ensure=lambda on_phase=None: release.wait(10), ready=lambda: False)
    warmup.start()
    p = warmup.progress()
    assert p.building and p.phase == "assemble"
    release.set()
    assert warmup.wait(10) and warmup.progress().state == "missing"
