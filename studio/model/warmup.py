"""The embedded model's cache, built in the background when the app starts, with progress any visitor can poll.

On a fresh machine the first visitor would otherwise wait in silence while the GGUF is dequantised. `Warmup` starts
that build in a daemon thread; a training job that needs the model meanwhile waits on the build's file lock (one
build, never two), and every page polls `progress()` to show the phase, the seconds so far and the expected total.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from studio.model.cache_progress import PHASES, CacheProgress, progress_from_status, progress_of, read_status
from studio.model.embedded import (
    embedded_build_running,
    embedded_cache_ready,
    embedded_status_file,
    ensure_embedded_cache,
)

log = logging.getLogger("studio.model")


def embedded_progress() -> CacheProgress:
    """Where the embedded cache stands, seen from any process: ready, building (with its phase) or missing."""
    if embedded_cache_ready():
        return CacheProgress("ready", fraction=1.0)
    if embedded_build_running():
        return progress_from_status(read_status(embedded_status_file()))
    return CacheProgress("missing")


class Warmup:
    """Builds the embedded model's cache in a background thread; `progress()` says how far it is.

    `ensure(on_phase=...)` and `ready()` default to the real cache; tests inject a slow fake build. A build that
    another process (or a job of this one) runs is reported from its status file.
    """

    def __init__(self, ensure: Callable[..., Any] | None = None, ready: Callable[[], bool] | None = None) -> None:
        self._ensure = ensure or ensure_embedded_cache
        self._ready = ready or embedded_cache_ready
        self._elsewhere = embedded_progress if ensure is None else None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._phase, self._started, self._phase_started, self._error = "", 0.0, 0.0, ""

    def start(self) -> bool:
        """Start the build unless the cache is ready or this warmup already started; True when it started now."""
        with self._lock:
            if self._thread is not None or self._ready():
                return False
            self._started = time.time()
            self._thread = threading.Thread(target=self._run, name="embedded-warmup", daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until this warmup's build has ended (True), or `timeout` seconds passed (False)."""
        if self._thread is None:
            return True
        return self._done.wait(timeout)

    def progress(self) -> CacheProgress:
        """ready, building (phase, elapsed and expected seconds, fraction), missing, or failed with its reason."""
        with self._lock:
            phase, started, phase_started, error = self._phase, self._started, self._phase_started, self._error
        if error:
            return CacheProgress("failed", error=error)
        if self._ready():
            return CacheProgress("ready", fraction=1.0)
        running = self._thread is not None and not self._done.is_set()
        if running and phase:
            return progress_of(phase, started, phase_started)
        found = self._elsewhere() if self._elsewhere is not None else CacheProgress("missing")
        if running and not found.building:  # our build is starting: say so rather than go quiet for a moment
            return progress_of(PHASES[0].key, started, started)
        return found

    def _on_phase(self, key: str) -> None:
        with self._lock:
            self._phase, self._phase_started = key, time.time()

    def _run(self) -> None:
        try:
            self._ensure(on_phase=self._on_phase)
        except Exception as exc:  # noqa: BLE001 - a failed warmup must not take the server down; Train retries
            log.warning("Could not prepare the embedded model in the background: %s", exc)
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            with self._lock:
                self._error = f"{first.rstrip('.')}. Training will try again when it starts."
        finally:
            self._done.set()
