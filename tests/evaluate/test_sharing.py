"""One model, many users (studio.evaluate.sharing): a first-come-first-served lock per model, adapter off/on."""
from __future__ import annotations

import threading
import time

from studio.evaluate.sharing import FairLock, model_lock, using
from tests.builders import tuned_model


def test_the_lock_serves_waiters_in_arrival_order():
    lock, order = FairLock(), []
    lock.acquire()

    def wait(i: int) -> None:
        with lock:
            order.append(i)

    threads = []
    for i in range(5):
        threads.append(threading.Thread(target=wait, args=(i,)))
        threads[-1].start()
        time.sleep(0.05)  # let each one queue before the next
    lock.release()
    for t in threads:
        t.join(timeout=10)
    assert order == [0, 1, 2, 3, 4]


def test_another_thread_may_release_it():
    lock = FairLock()
    lock.acquire()
    threading.Thread(target=lock.release).start()
    lock.acquire()  # would hang if the release were refused
    lock.release()


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
