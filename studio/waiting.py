"""One first-come-first-served waiting line for one slot: the training queue and each shared model's lock use it.

`threading.Lock` promises no order, so a waiter could be overtaken forever; here whoever joined first gets the slot
next. Members are compared by identity (two jobs with equal fields are still two jobs).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

POLL_SECONDS = 0.2  # how often a waiter with a stop check looks at it (a stop needs no notify)


class WaitingLine:
    """One holder at a time, the others waiting in the order they came; a waiter may leave the line."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: list[Any] = []
        self._holder: Any = None

    def _index(self, who: Any) -> int | None:
        return next((i for i, w in enumerate(self._waiting) if w is who), None)

    def join(self, who: Any) -> None:
        """Go to the back of the line (a no-op for the holder or someone already waiting)."""
        with self._cond:
            if who is not self._holder and self._index(who) is None:
                self._waiting.append(who)

    def wait_turn(self, who: Any, should_stop: Callable[[], bool] | None = None) -> bool:
        """Join, then block until `who` holds the slot (True), or leave the line once `should_stop()` (False)."""
        with self._cond:
            self.join(who)
            while self._holder is not None or self._waiting[0] is not who:
                if should_stop is not None and should_stop():
                    self._leave(who)
                    return False
                self._cond.wait(timeout=POLL_SECONDS if should_stop is not None else None)
            self._waiting.pop(0)
            self._holder = who
            return True

    def leave(self, who: Any) -> None:
        """Give the slot back (the holder) or step out of the line (a waiter), so the next one goes on."""
        with self._cond:
            self._leave(who)

    def _leave(self, who: Any) -> None:
        if who is not None and who is self._holder:
            self._holder = None
        elif (i := self._index(who)) is not None:
            del self._waiting[i]
        self._cond.notify_all()

    def position(self, who: Any) -> int:
        """How many are ahead of `who` (0 when it holds the slot or is not in the line)."""
        with self._cond:
            i = self._index(who)
            return 0 if i is None else i + (self._holder is not None)

    def holder(self) -> Any:
        """Who holds the slot, or None."""
        with self._cond:
            return self._holder

    def members(self) -> list[Any]:
        """The holder (if any) followed by the waiters, in order."""
        with self._cond:
            return ([self._holder] if self._holder is not None else []) + list(self._waiting)
