"""One model, many users (studio.evaluate.sharing): a first-come-first-served lock per model, adapter off/on.

Every wait is bounded: a lock that never lets a thread in fails an assertion here instead of hanging the suite.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from studio.evaluate.sharing import FairLock, model_lock, using
from tests.builders import tuned_model

WAIT_S = 10.0  # far longer than any step here takes, even on a busy 2-core machine


def start(target: Callable[[], None]) -> threading.Thread:
    """A daemon thread running `target` (a hung one cannot keep the test process alive)."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def join_all(threads: list[threading.Thread]) -> None:
    """Join every thread, failing (not hanging) when one is still waiting after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"still waiting for the lock after {WAIT_S} s: {stuck}"


def test_the_lock_serves_waiters_in_arrival_order():
    lock, order, inside, most_inside = FairLock(), [], [0], [0]
    lock.acquire()

    def wait(i: int, arriving: threading.Event) -> None:
        arriving.set()
        with lock:
            inside[0] += 1
            most_inside[0] = max(most_inside[0], inside[0])
            order.append(i)
            time.sleep(0.01)  # hold it a moment, so an intruder would be caught inside too
            inside[0] -= 1

    threads = []
    for i in range(5):
        arriving = threading.Event()
        threads.append(start(lambda i=i, arriving=arriving: wait(i, arriving)))
        assert arriving.wait(WAIT_S)
        time.sleep(0.1)  # from arriving to waiting in line is a few instructions: let each queue before the next
    assert order == []  # nobody gets in while the first holder has it
    lock.release()
    join_all(threads)
    assert order == [0, 1, 2, 3, 4] and most_inside[0] == 1


def test_another_thread_may_release_it():
    lock, acquired = FairLock(), threading.Event()
    lock.acquire()
    join_all([start(lock.release)])

    def take_it_again() -> None:
        lock.acquire()  # waits forever if the release from the other thread was refused
        acquired.set()
        lock.release()

    join_all([start(take_it_again)])
    assert acquired.is_set()


def test_a_waiter_gets_in_only_after_the_holder_leaves():
    lock, events = FairLock(), []
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            events.append("holder in")
            holding.set()
            release.wait(WAIT_S)
            events.append("holder out")

    def waiter() -> None:
        with lock:
            events.append("waiter in")

    threads = [start(holder)]
    assert holding.wait(WAIT_S)
    threads.append(start(waiter))
    time.sleep(0.2)  # the waiter has had time to barge in, were the lock not held
    assert events == ["holder in"]
    release.set()
    join_all(threads)
    assert events == ["holder in", "holder out", "waiter in"]


def test_one_lock_per_model_and_the_adapter_state_inside(tiny_tokenizer):
    model, other = tuned_model(tiny_tokenizer), tuned_model(tiny_tokenizer)
    assert model_lock(model) is model_lock(model) and model_lock(model) is not model_lock(other)
    from peft.tuners.lora import LoraLayer

    layer = next(m for m in model.modules() if isinstance(m, LoraLayer))
    with using(model, adapter=False):
        assert layer.disable_adapters
    assert not layer.disable_adapters
    with using(model, adapter=True):
        assert not layer.disable_adapters


def test_a_tuned_answer_waits_for_the_base_answer_and_each_sees_its_own_adapter_state(tiny_tokenizer):
    model = tuned_model(tiny_tokenizer)
    from peft.tuners.lora import LoraLayer

    layer = next(m for m in model.modules() if isinstance(m, LoraLayer))
    seen: list[tuple[str, bool]] = []
    base_inside, go_on = threading.Event(), threading.Event()

    def base() -> None:
        with using(model, adapter=False):
            seen.append(("base starts", layer.disable_adapters))
            base_inside.set()
            go_on.wait(WAIT_S)
            seen.append(("base ends", layer.disable_adapters))

    def tuned() -> None:
        with using(model, adapter=True):
            seen.append(("tuned", layer.disable_adapters))

    threads = [start(base)]
    assert base_inside.wait(WAIT_S)
    threads.append(start(tuned))
    time.sleep(0.2)  # the tuned generation is queued behind the base one, not switching the adapter under it
    go_on.set()
    join_all(threads)
    assert seen == [("base starts", True), ("base ends", True), ("tuned", False)]
    assert not layer.disable_adapters  # the adapter is back on once the base answer is done
