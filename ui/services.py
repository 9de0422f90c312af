"""Process-wide services the tabs share: injected model/tokenizer loaders, a tokenizer cache and the job registry.

Per-visitor data lives in `SessionState`; what lives here is either immutable (loaders, the runs folder) or
keyed by the visitor's owner id (their training job), so one visitor never sees another's work.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import RunError
from studio.presets import PRESET_DIR

log = logging.getLogger("studio.ui")
from studio.settings import ModelSettings

ModelLoader = Callable[..., Any]  # (ModelSettings, token=None) -> studio.model.loading.LoadedModel
TokenizerLoader = Callable[..., Any]  # (ModelSettings, token=None) -> tokenizer
JobFactory = Callable[..., Any]  # (settings, root, owner=, token=, model_loader=) -> studio.jobs.TrainingJob


def max_upload_bytes() -> int:
    """The upload size cap: $STUDIO_MAX_UPLOAD_MB megabytes (default 200)."""
    return int(float(os.environ.get("STUDIO_MAX_UPLOAD_MB", "200")) * 1024 * 1024)


def default_model_loader(settings: ModelSettings, token: str | None = None) -> Any:
    """The library's loader (imported lazily so the UI starts before the model code is needed)."""
    from studio.model.loading import load_base_model

    return load_base_model(settings, token=token)


def default_tokenizer_loader(settings: ModelSettings, token: str | None = None) -> Any:
    """Just the tokenizer (seconds, not the minute a whole model can take)."""
    from studio.model.loading import load_tokenizer

    return load_tokenizer(settings, token=token)


def default_job_factory(settings: Any, root: Path, owner: str = "", token: str | None = None,
                        model_loader: ModelLoader | None = None) -> Any:
    """A TrainingJob from the library; an injected loader replaces its `load_base_model`."""
    from studio.jobs import TrainingJob

    injected = None if model_loader is default_model_loader else model_loader
    return TrainingJob(settings, root, owner=owner, token=token, model_loader=injected)


class JobRegistry:
    """Training jobs by owner id, so a reload or a second tab of the same browser reattaches to its job."""

    def __init__(self) -> None:
        self._jobs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, owner: str) -> Any | None:
        """This owner's latest job (running or finished), if any."""
        with self._lock:
            return self._jobs.get(owner)

    def add(self, owner: str, job: Any) -> None:
        """File a new job under `owner`; refuses while the owner's previous job is still active."""
        with self._lock:
            old = self._jobs.get(owner)
            if old is not None and is_active(old):
                raise RunError("You already have a training run in progress; stop it or wait for it to finish.")
            self._jobs[owner] = job


def is_active(job: Any) -> bool:
    """True while a job is queued or running."""
    from studio.runs import ACTIVE

    return job is not None and job.status in ACTIVE


@dataclass
class Services:
    """Everything the handlers need besides the visitor's own state."""

    runs_root: Path
    model_loader: ModelLoader = default_model_loader
    tokenizer_loader: TokenizerLoader = default_tokenizer_loader
    job_factory: JobFactory = default_job_factory
    preset_dir: Path = PRESET_DIR
    jobs: JobRegistry = field(default_factory=JobRegistry)  # each visitor's latest job (a demo counts as one)
    demos: JobRegistry = field(default_factory=JobRegistry)  # each visitor's latest one-click demo
    warmup: Any = None  # studio.model.warmup.Warmup preparing the embedded model, when the app started one
    max_upload_bytes: int = field(default_factory=lambda: max_upload_bytes())
    _tokenizers: dict[tuple[str, str], Any] = field(default_factory=dict)
    _locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _run_model: Any = None  # the last run opened for Compare (one at a time: a model is ~1 GB)

    def new_job(self, settings: Any, owner: str, token: str | None = None) -> Any:
        """A training job for `settings` in the runs folder, filed under `owner` by the caller."""
        return self.job_factory(settings, self.runs_root, owner=owner, token=token, model_loader=self.model_loader)

    def run_model(self, run_id: str, job: Any = None, token: str | None = None) -> Any:
        """The tuned model of a run for Compare: the visitor's in-memory job model, else the adapter from disk."""
        from studio import pipeline

        if job is not None and job.run_id == run_id and job.model is not None and not is_active(job):
            return pipeline.from_job(job)
        with self._guard:
            cached = self._run_model
        if cached is not None and cached.run_id == run_id:
            return cached
        opened = self._open_run(run_id, token)
        with self._guard:
            self._run_model = opened
        return opened

    def forget_run(self, run_id: str) -> None:
        """Drop a deleted run's cached model."""
        with self._guard:
            if self._run_model is not None and self._run_model.run_id == run_id:
                self._run_model = None

    def _open_run(self, run_id: str, token: str | None) -> Any:
        """pipeline.open_run, through the injected model loader when one is set."""
        from studio import pipeline

        injected = None if self.model_loader is default_model_loader else self.model_loader
        return pipeline.open_run(self.runs_root, run_id, token=token, model_loader=injected)

    def tokenizer(self, settings: ModelSettings, token: str | None = None) -> Any:
        """The base model's tokenizer, loaded once per model name and revision (concurrent callers wait)."""
        cache_key = (settings.model.strip(), settings.revision.strip())
        with self._guard:
            lock = self._locks.setdefault(cache_key, threading.Lock())
        with lock:
            if cache_key not in self._tokenizers:
                self._tokenizers[cache_key] = self.tokenizer_loader(settings, token=token or None)
            return self._tokenizers[cache_key]

    def warm_tokenizer(self, settings: ModelSettings) -> None:
        """Start loading a tokenizer in the background so the first preview does not wait for it."""
        def load() -> None:
            try:
                self.tokenizer(settings)
            except Exception as exc:  # noqa: BLE001 - the preview reports the problem when it asks again
                log.info("Could not preload the tokenizer of %s: %s", settings.model, exc)
        threading.Thread(target=load, name="warm-tokenizer", daemon=True).start()
