"""One model, many users: a fair lock per model and the adapter switched off (base) or on (tuned) inside it.

Base and tuned answers come from one PeftModel whose adapter is disabled for the base answers; Compare, the free
prompt, the chat and the snapshot timeline may all want the same cached model at once (two visitors, or a chat
turn during a Compare). Each generation therefore runs while holding the model's lock, with the adapter state it
needs set inside, so no generation ever sees another's adapter state. The lock is first come, first served
(`studio.waiting`; `threading.Lock` promises no order): a chat turn queued behind Compare gets the model between
two of its batches.
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from studio.waiting import WaitingLine


class FairLock:
    """A first-come-first-served lock (`studio.waiting.WaitingLine`); any thread may release it (generation threads
    come and go)."""

    def __init__(self) -> None:
        self._line = WaitingLine()

    def acquire(self) -> None:
        """Wait for every earlier caller, then hold the lock."""
        self._line.wait_turn(object())

    def release(self) -> None:
        """Let the next caller in."""
        self._line.leave(self._line.holder())

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# Keyed by the model object itself (not per visitor): every holder of the same model must find the same lock,
# and the entry goes when the model does.
_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: Any) -> FairLock:
    """The one lock of this model object."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = FairLock()
        return lock


def adapter_off(model: Any) -> contextlib.AbstractContextManager:
    """The adapter disabled for the block: a PeftModel is then exactly its base model (a plain model is as it is)."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


@contextlib.contextmanager
def using(model: Any, adapter: bool = True) -> Iterator[Any]:
    """Hold the model's lock with the adapter on (tuned) or off (base) for one generation."""
    with model_lock(model), (contextlib.nullcontext() if adapter else adapter_off(model)):
        yield model
