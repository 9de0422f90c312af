"""The fast SFT trainer (logits only where the loss is taken, no full-vocabulary metrics) and the metrics callback.

Why it is faster than TRL's defaults on a CPU: Gemma 3's output head is 640 x 262,144, more FLOPs than the rest of
the model. TRL scores every position through the head on non-Triton devices and also computes entropy and token
accuracy over the full vocabulary; here the decoder runs to hidden states, only positions whose next token is
trained go through the head, and no extra metrics are computed. The top-level model's forward is therefore not
called during training: hooks meant to fire per step belong on `model.get_decoder()`.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import TrainerCallback
from trl import SFTTrainer

IGNORE_INDEX = -100


def causal_parts(model: nn.Module) -> tuple[nn.Module, nn.Module, float | None, float]:
    """Decoder, output head, logit soft-cap and logit scale of a causal LM, looking through PEFT wrappers."""
    base = model
    while hasattr(base, "get_base_model") and base.get_base_model() is not base:
        base = base.get_base_model()  # PeftModel -> the transformers model with LoRA layers injected
    head = base.get_output_embeddings()
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    if head is None or decoder is None or decoder is base:
        raise TypeError(f"{type(base).__name__} exposes no decoder/output head for the fast loss.")
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    return decoder, head, getattr(config, "final_logit_softcapping", None), _logit_scale(config)


def _logit_scale(config: Any) -> float:
    """The multiplier some families put on the logits before the soft-cap (Cohere, Granite, ...), as TRL reads it."""
    for name in ("logit_scale", "output_multiplier", "lm_head_multiplier"):
        if getattr(config, name, None) is not None:
            return float(getattr(config, name))
    scaling = getattr(config, "logits_scaling", None)
    if scaling is None:
        return 1.0
    return float(scaling) if config.model_type == "hyperclovax" else 1.0 / float(scaling)


def _project(head: nn.Module, hidden: torch.Tensor, cap: float | None, scale: float) -> torch.Tensor:
    """Logits as the model's own forward makes them: head, scale, then tanh soft-cap."""
    logits = head(hidden)
    if scale != 1.0:
        logits = logits * scale
    return logits if not cap else torch.tanh(logits / cap) * cap


def _normaliser(n_labels: torch.Tensor, num_items_in_batch: Any) -> torch.Tensor:
    """Divide by the tokens of the whole accumulated batch when the Trainer counted them, else by this batch's."""
    total = n_labels if num_items_in_batch is None else torch.as_tensor(num_items_in_batch)
    return total.to(n_labels.device).clamp(min=1)


def fast_completion_loss(
    model: nn.Module, inputs: dict[str, torch.Tensor], num_items_in_batch: Any = None,
) -> torch.Tensor:
    """Next-token loss with the output head applied only at positions whose label is trained."""
    decoder, head, cap, scale = causal_parts(model)
    hidden = decoder(
        input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False
    ).last_hidden_state
    labels = inputs["labels"][:, 1:].to(hidden.device)
    mask = labels != IGNORE_INDEX
    # Boolean indexing gathers the trained positions: (n_trained, hidden) instead of (batch, seq, hidden).
    logits = _project(head, hidden[:, :-1][mask], cap, scale).float()
    loss_sum = F.cross_entropy(logits, labels[mask], reduction="sum")
    return loss_sum / _normaliser(mask.sum(), num_items_in_batch)


def reference_completion_loss(
    model: nn.Module, inputs: dict[str, torch.Tensor], num_items_in_batch: Any = None,
) -> torch.Tensor:
    """The standard loss: full logits from the model's own forward, shifted cross-entropy over trained labels."""
    logits = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False).logits
    labels = inputs["labels"][:, 1:].to(logits.device)
    logits = logits[:, :-1].float()
    loss_sum = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), reduction="sum")
    return loss_sum / _normaliser((labels != IGNORE_INDEX).sum(), num_items_in_batch)


class FastSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss skips the full-vocabulary logits and metrics, and which counts real tokens."""

    def __init__(self, *args: Any, fast_loss: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast_loss = fast_loss
        self.real_tokens = 0  # non-padding tokens seen in training, for tokens/s

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Completion loss through the fast path (or the full-logits reference path when fast_loss is off)."""
        if return_outputs:  # only prediction with logits needs them; keep TRL's behaviour there
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if model.training else "eval"
        loss_fn = fast_completion_loss if self.fast_loss else reference_completion_loss
        loss = loss_fn(model, inputs, num_items_in_batch)
        if mode == "train":
            mask = inputs.get("attention_mask")
            self.real_tokens += int(mask.sum()) if mask is not None else inputs["input_ids"].numel()
            self._metrics[mode]["num_tokens"] = [self.real_tokens]
        return loss


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
    ) -> None:
        self.sink, self.stop_event, self.save_at_end = sink, stop_event, save_at_end
        self.skip_until_step, self.elapsed_offset, self.on_begin = skip_until_step, elapsed_offset, on_begin
        self.trainer: FastSFTTrainer | None = None  # set after the trainer exists, for the token count
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
        return self.trainer.real_tokens if self.trainer is not None else 0


class ThreadBalancer(TrainerCallback):
    """Runs torch on every core that other processes leave idle, re-checked every `every` steps (train.threads = 0).

    A torch thread waiting for a core another process holds stalls every parallel op: on a busy 2-core machine,
    2 threads took 3-25 s per step where 1 thread steadily took 4.3 s (Gemma 3 270M, batch 8, measured), and
    greedy generation of 24 prompts took 32 s with 2 threads against 12 s with 1 (studio.bench, load ~3.5).
    `limit` caps the count (generation passes the thread count it was given); `begin`/`check` serve any loop.
    """

    def __init__(self, every: int = 5, cores: int | None = None, limit: int | None = None) -> None:
        import psutil

        self.every, self.cores = every, cores or os.cpu_count() or 1
        self.limit = limit or self.cores
        self._process, self._psutil = psutil.Process(), psutil

    def begin(self, sample_seconds: float = 0.3) -> int:
        """Sample the machine for a moment (this process idle) and set the thread count."""
        self._process.cpu_percent(None)
        return self._set(self._psutil.cpu_percent(interval=sample_seconds), self._process.cpu_percent(None))

    def check(self) -> int:
        """Adapt to what the other processes used since the last check."""
        return self._set(self._psutil.cpu_percent(None), self._process.cpu_percent(None))

    def on_train_begin(self, args, state, control, **kwargs):
        """Sample the machine for a moment before the first step."""
        self.begin()

    def on_step_end(self, args, state, control, **kwargs):
        """Every few steps, adapt to what the other processes used since the last check."""
        if state.global_step % self.every == 0:
            self.check()

    def _set(self, machine_percent: float, own_percent: float) -> int:
        # machine_percent averages over cores; own_percent counts one core as 100.
        others = max(0.0, machine_percent * self.cores - own_percent) / 100
        threads = max(1, min(self.limit, self.cores - math.ceil(others - 0.3)))
        torch.set_num_threads(threads)
        return threads
