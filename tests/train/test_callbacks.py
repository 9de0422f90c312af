"""The metrics callback records every log, skips what a resumed run already logged, and honours the stop flag."""
from __future__ import annotations

import threading
from types import SimpleNamespace

from studio.train.callbacks import MetricsCallback


def _state(step: int, max_steps: int = 10, epoch: float = 0.5):
    return SimpleNamespace(global_step=step, max_steps=max_steps, epoch=epoch)


def _control():
    return SimpleNamespace(should_training_stop=False, should_save=False)


def test_metrics_callback_records_every_log_with_all_keys():
    records: list[dict] = []
    cb = MetricsCallback(records.append, threading.Event())
    cb.trainer = SimpleNamespace(real_tokens=0)
    cb.on_train_begin(None, _state(0), _control())
    cb.trainer.real_tokens = 120
    cb.on_log(None, _state(1), _control(), logs={"loss": 2.5, "learning_rate": 1e-4, "grad_norm": 0.7})
    cb.on_log(None, _state(1), _control(), logs={"eval_loss": 2.0})
    cb.on_log(None, _state(1), _control(), logs={"train_runtime": 3.0, "train_loss": 2.4})  # summary: skipped
    cb.on_log(None, _state(2), _control(), logs={"loss": float("nan")})
    keys = {"step", "epoch", "loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_second", "elapsed"}
    assert [set(r) for r in records] == [keys] * 3
    assert records[0]["loss"] == 2.5 and records[0]["tokens_per_second"] > 0
    assert records[1]["eval_loss"] == 2.0 and records[1]["loss"] is None
    assert records[2]["loss"] is None  # NaN must not reach metrics.jsonl


def test_metrics_callback_skips_steps_logged_before_a_resume():
    records: list[dict] = []
    cb = MetricsCallback(records.append, threading.Event(), skip_until_step=3, elapsed_offset=10.0)
    cb.on_train_begin(None, _state(3), _control())
    cb.on_log(None, _state(3), _control(), logs={"loss": 1.0})
    cb.on_log(None, _state(4), _control(), logs={"loss": 0.9})
    assert [r["step"] for r in records] == [4]
    assert records[0]["elapsed"] >= 10.0


def test_metrics_callback_stops_and_checkpoints_on_the_stop_flag():
    stop = threading.Event()
    cb = MetricsCallback(lambda r: None, stop, save_at_end=True)
    control = _control()
    cb.on_step_end(None, _state(2), control)
    assert not control.should_training_stop and not control.should_save
    stop.set()
    cb.on_step_end(None, _state(3), control)
    assert control.should_training_stop and control.should_save


def test_metrics_callback_checkpoints_the_last_step():
    cb = MetricsCallback(lambda r: None, threading.Event(), save_at_end=True)
    control = _control()
    cb.on_step_end(None, _state(10, max_steps=10), control)
    assert control.should_save and not control.should_training_stop
