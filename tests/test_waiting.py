"""The one first-come-first-served waiting line (studio.waiting) that the job queue and the model locks share."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from studio.waiting import WaitingLine


def test_waiters_get_the_slot_in_the_order_they_came():
    line, order = WaitingLine(), []
    assert line.wait_turn("first")

    def wait(who: str) -> None:
        assert line.wait_turn(who)
        order.append(who)
        line.leave(who)

    waiters, threads = ["a", "b", "c"], []
    for who in waiters:
        threads.append(threading.Thread(target=wait, args=(who,), daemon=True))  # daemon: a failure never hangs
        threads[-1].start()
        while len(line.members()) < len(threads) + 1:  # each one queues before the next starts
            time.sleep(0.01)
    assert line.members() == ["first", *waiters] and [line.position(w) for w in waiters] == [1, 2, 3]
    line.leave("first")
    for t in threads:
        t.join(timeout=5)
    assert not any(t.is_alive() for t in threads)
    assert order == ["a", "b", "c"] and line.holder() is None and line.members() == []


def test_a_waiter_leaves_when_told_to_stop_and_the_next_moves_up():
    line = WaitingLine()
    line.wait_turn("holder")
    line.join("stopped")
    line.join("next")
    assert line.wait_turn("stopped", should_stop=lambda: True) is False
    assert line.members() == ["holder", "next"] and line.position("stopped") == 0 and line.position("next") == 1


def test_members_are_told_apart_by_identity_not_equality():
    line = WaitingLine()
    a, b = SimpleNamespace(run_id="same"), SimpleNamespace(run_id="same")
    assert a == b
    line.join(a)
    line.join(b)
    line.join(a)  # joining twice keeps one place
    assert line.members() == [a, b] and line.members()[1] is b
    line.leave(b)
    assert len(line.members()) == 1 and line.members()[0] is a


def test_leaving_an_empty_slot_is_harmless():
    line = WaitingLine()
    line.leave(line.holder())
    assert line.wait_turn("x") and line.holder() == "x"
