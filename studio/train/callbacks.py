"""Trainer callbacks: metrics into the job's history (and the stop flag honoured), and opt-in thread balancing."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from studio.model.threads import ThreadBalancer


def _finite(value: Any) -> float | None:
    """JSON-safe number: NaN/inf (a diverged step) and missing values become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class StopBeforeFirstStep(Exception):
    """Raised out of `Trainer.train` when the stop came before any step of this session ran."""


class MetricsCallback(TrainerCallback):
    """Feeds each log into a metrics sink and stops training when the stop flag is set.

    `sink(record)` receives {step, epoch, loss, eval_loss, learning_rate, grad_norm, tokens_per_second, elapsed}.
    Steps at or below `skip_until_step` (already logged before a resume) are not sent again. A stop during a step
    ends training after it, with a checkpoint so the run can resume.
    """

    def __init__(
        self,
        sink: Callable[[dict[str, Any]], None],
        stop_event: threading.Event,
        save_at_end: bool = True,
        skip_until_step: int = 0,
        elapsed_offset: float = 0.0,
        on_begin: Callable[[int], None] | None = None,
        count_tokens: Callable[[int], int] | None = None,
    ) -> None:
        self.sink, self.stop_event, self.save_at_end = sink, stop_event, save_at_end
        self.skip_until_step, self.elapsed_offset, self.on_begin = skip_until_step, elapsed_offset, on_begin
        self.count_tokens = count_tokens  # this process's count -> every process's (a launched run sums them)
        self.trainer: Any = None  # the FastSFTTrainer,  # set after the trainer exists, for the token count
        self._start = time.perf_counter()
        self._last_time, self._last_tokens, self._begin_step = self._start, 0, 0

    def on_train_begin(self, args, state, control, **kwargs):
        """Start the clocks and report the real number of optimiser steps."""
        self._start = self._last_time = time.perf_counter()
        self._last_tokens, self._begin_step = self._tokens(), state.global_step
        if self.on_begin is not None:
            self.on_begin(state.max_steps)

    def on_step_begin(self, args, state, control, **kwargs):
        """A stop before the first step of this session aborts at once (there is nothing to checkpoint)."""
        if self.stop_event.is_set() and state.global_step == self._begin_step:
            raise StopBeforeFirstStep

    def on_step_end(self, args, state, control, **kwargs):
        """Honour the stop flag; checkpoint when stopping (so the run can resume) and at the end."""
        self._check_stop(control)
        if self.save_at_end and state.global_step >= state.max_steps:
            control.should_save = True

    def _check_stop(self, control) -> None:
        # Also called from on_log, which runs after on_step_end but before the Trainer decides to save and stop.
        if self.stop_event.is_set():
            control.should_training_stop = True
            control.should_save = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Turn a Trainer log into one metrics record."""
        logs = logs or {}
        if ("loss" not in logs and "eval_loss" not in logs) or state.global_step <= self.skip_until_step:
            return self._check_stop(control)
        now, tokens = time.perf_counter(), self._tokens()
        tps = None
        if "loss" in logs and now > self._last_time and tokens > self._last_tokens:
            tps = (tokens - self._last_tokens) / (now - self._last_time)
            self._last_time, self._last_tokens = now, tokens
        self.sink({
            "step": state.global_step, "epoch": _finite(state.epoch),
            "loss": _finite(logs.get("loss")), "eval_loss": _finite(logs.get("eval_loss")),
            "learning_rate": _finite(logs.get("learning_rate")), "grad_norm": _finite(logs.get("grad_norm")),
            "tokens_per_second": tps, "elapsed": round(self.elapsed_offset + now - self._start, 3),
        })
        self._check_stop(control)

    def _tokens(self) -> int:
        tokens = self.trainer.real_tokens if self.trainer is not None else 0
        return self.count_tokens(tokens) if self.count_tokens is not None else tokens


class BalanceThreads(TrainerCallback):
    """Runs torch on the cores other processes leave idle, re-checked every `every` steps (train.balance_threads).

    Opt-in only: every change of the thread count changes float summation order, so the run is not reproducible.
    """

    def __init__(self, every: int = 5, cores: int | None = None, limit: int | None = None) -> None:
        self.every, self.balancer = every, ThreadBalancer(cores=cores, limit=limit)

    def on_train_begin(self, args, state, control, **kwargs):
        """Sample the machine for a moment before the first step."""
        self.balancer.begin()

    def on_step_end(self, args, state, control, **kwargs):
        """Every few steps, adapt to what the other processes used since the last check."""
        if state.global_step % self.every == 0:
            self.balancer.check()
