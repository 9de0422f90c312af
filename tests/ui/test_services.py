"""Process-wide services of the UI: the job registry by owner, the tokenizer cache, the cached Compare model."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from studio.errors import RunError
from studio.settings import ModelSettings
from tests.builders import make_finished_run
from ui.services import JobRegistry, Services, is_active, max_upload_bytes


def test_registry_keeps_each_owners_latest_job_and_refuses_a_second_active_one():
    registry = JobRegistry()
    running = SimpleNamespace(status="training")
    registry.add("alice", running)
    assert registry.get("alice") is running and registry.get("bob") is None
    with pytest.raises(RunError, match="already have a training run"):
        registry.add("alice", SimpleNamespace(status="queued"))
    running.status = "completed"
    assert not is_active(running)
    newer = SimpleNamespace(status="queued")
    registry.add("alice", newer)
    assert registry.get("alice") is newer


def test_the_tokenizer_is_loaded_once_per_model_even_by_concurrent_callers(tmp_path):
    calls: list[str] = []

    def tokenizer_loader(settings, token=None):
        calls.append(settings.model)
        return object()

    services = Services(runs_root=tmp_path, tokenizer_loader=tokenizer_loader)
    found: list[object] = []
    threads = [threading.Thread(target=lambda: found.append(services.tokenizer(ModelSettings()))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(f) for f in found}) == 1
    services.tokenizer(ModelSettings(model="other/model"))
    assert calls == [ModelSettings().model, "other/model"]


def test_compare_reuses_one_opened_run_until_it_is_forgotten(runs_dir, tiny_tokenizer, tiny_loader):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    loads: list[str] = []

    def loader(settings, token=None):
        loads.append(settings.model)
        return tiny_loader(settings)

    services = Services(runs_root=runs_dir, model_loader=loader)
    first = services.run_model(run_dir.name)
    assert services.run_model(run_dir.name) is first and len(loads) == 1
    services.forget_run(run_dir.name)
    assert services.run_model(run_dir.name) is not first and len(loads) == 2


def test_upload_cap_follows_the_environment(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "1.5")
    assert max_upload_bytes() == int(1.5 * 1024 * 1024)


def test_a_run_opens_on_a_thread_of_its_own(runs_dir, tiny_tokenizer, tiny_loader):
    import threading

    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    threads: list[threading.Thread] = []

    def loader(settings, token=None):
        threads.append(threading.current_thread())
        return tiny_loader(settings)

    Services(runs_root=runs_dir, model_loader=loader).run_model(run_dir.name)
    assert threads and threads[0] is not threading.current_thread() and threads[0].name.startswith("model-work-")
    assert not threads[0].is_alive()  # its OpenMP workers ended with it
