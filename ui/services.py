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
from studio.model.threads import on_own_thread
from studio.settings import ModelSettings

ModelLoader = Callable[..., Any]  # (ModelSettings, token=None) -> studio.model.loading.LoadedModel
TokenizerLoader = Callable[..., Any]  # (ModelSettings, token=None) -> tokenizer
JobFactory = Callable[..., Any]  # (settings, root, owner=, token=, model_loader=, [resume_run=|continue_run=|
#                                    after= + kind= (studio.demo.demo_args)]) -> job


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
                        model_loader: ModelLoader | None = None, **origin: Any) -> Any:
    """A TrainingJob from the library; an injected loader replaces its `load_base_model`.

    `origin` is `resume_run=RUN_ID` (Resume) or `continue_run=RUN_ID` (Train more), or nothing for a new run;
    `studio.demo.demo_args()` adds the demo's after-training stage.
    """
    from studio.jobs import TrainingJob

    injected = None if model_loader is default_model_loader else model_loader
    return TrainingJob(settings, root, owner=owner, token=token, model_loader=injected, **origin)


class JobRegistry:
    """Training jobs by owner id, so a reload or a second tab of the same browser reattaches to its job."""

    def __init__(self) -> None:
        self._jobs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, owner: str) -> Any | None:
        """This owner's latest job (running or finished), if any."""
        with self._lock:
            return self._jobs.get(owner)

    def check_free(self, owner: str) -> None:
        """RunError while the owner's job is still active (checked before a new job touches any run folder)."""
        if is_active(self.get(owner)):
            raise RunError("You already have a training run in progress; stop it or wait for it to finish.")

    def add(self, owner: str, job: Any) -> None:
        """File a new job under `owner`; refuses while the owner's previous job is still active."""
        with self._lock:
            old = self._jobs.get(owner)
            if old is not None and is_active(old):
                raise RunError("You already have a training run in progress; stop it or wait for it to finish.")
            self._jobs[owner] = job


class StopFlags:
    """Stop buttons for work that runs inside a request (Compare, the free prompt, chat, snapshot scoring).

    One flag per visitor and kind of work: a visitor's Stop reaches only their own request, and a new request
    starts with its flag lowered.
    """

    def __init__(self) -> None:
        self._flags: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()

    def _flag(self, owner: str, kind: str) -> threading.Event:
        with self._lock:
            return self._flags.setdefault((owner, kind), threading.Event())

    def start(self, owner: str, kind: str) -> threading.Event:
        """The lowered flag a new request of this kind watches."""
        flag = self._flag(owner, kind)
        flag.clear()
        return flag

    def stop(self, owner: str, kind: str) -> None:
        """Raise the flag: the visitor's running request of this kind stops at its next check."""
        self._flag(owner, kind).set()


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
    jobs: JobRegistry = field(default_factory=JobRegistry)  # each visitor's latest job (a demo is one: kind "demo")
    warmup: Any = None  # studio.model.warmup.Warmup preparing the embedded model, when the app started one
    stops: StopFlags = field(default_factory=StopFlags)  # per visitor: stop Compare, the prompt box, chat
    max_upload_bytes: int = field(default_factory=lambda: max_upload_bytes())
    _tokenizers: dict[tuple[str, str], Any] = field(default_factory=dict)
    _locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _run_model: Any = None  # the last run opened for Compare (one at a time: a model is ~1 GB)

    def new_job(self, settings: Any, owner: str, token: str | None = None, **origin: Any) -> Any:
        """A training job for `settings` in the runs folder (`origin`: resume_run=, continue_run=, or the demo's
        after= and kind=), filed by the caller."""
        return self.job_factory(settings, self.runs_root, owner=owner, token=token, model_loader=self.model_loader,
                                **origin)

    def run_model(self, run_id: str, job: Any = None, token: str | None = None) -> Any:
        """The tuned model of a run for Compare: the visitor's in-memory job model, else the adapter from disk."""
        from studio import pipeline

        if job is not None and job.run_id == run_id and job.model is not None and not is_active(job) \
                and not self._snapshot_in_use(run_id):  # the job's in-memory weights are the final adapter's
            return pipeline.from_job(job)
        with self._guard:
            cached = self._run_model
        if cached is not None and cached.run_id == run_id:
            return cached
        opened = on_own_thread(self._open_run, run_id, token)  # its OpenMP workers end with the load
        with self._guard:
            self._run_model = opened
        return opened

    def _snapshot_in_use(self, run_id: str) -> bool:
        from studio.runs import read_run

        return bool(read_run(self.runs_root, run_id).adapter_choice)

    def forget_run(self, run_id: str) -> None:
        """Drop a run's cached model (deleted, or its adapter replaced)."""
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
