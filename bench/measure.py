"""The bench's instruments, shared by every training contender: a meter on the decoder and the head, the per-step
summary, the common loss yardstick and the fingerprint of the initial LoRA weights.

The meter: a forward pre-hook on the decoder counts real tokens and positions of every training forward, a hook on
the output head counts the positions it projects, and a callback times each optimiser step end to end (step end to
step end: collation, forward, backward, optimiser, logging and metrics all count).
"""
from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from bench.flops import ModelShape, training_flops


def adapter_fingerprint(model: Any) -> str:
    """sha256 over the trainable (LoRA) weights in name order: equal fingerprints mean identical initialisations."""
    import hashlib

    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


_FUSED_METERS: dict[int, Meter] = {}  # id(output head) -> the meter counting its positions


def _count_fused_head(head: Any, meter: Meter) -> None:
    """Count the positions the fused head loss projects too: it reads the head's weights without calling the head
    module, so the head's forward hook never sees them (studio.train.fused_head)."""
    import studio.train.trainer as fast

    _FUSED_METERS[id(head)] = meter
    if getattr(fast.head_cross_entropy_sum, "metered", False):
        return
    original = fast.head_cross_entropy_sum

    def metered(hidden: torch.Tensor, head: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        if (counting := _FUSED_METERS.get(id(head))) is not None:
            counting._on_head(head, (hidden,), None)
        return original(hidden, head, *args, **kwargs)

    metered.metered = True
    fast.head_cross_entropy_sum = metered


class Meter:
    """Counts what every training forward processes and times each optimiser step (step end to step end)."""

    def __init__(self, model: Any, head_on_every_position: bool = False):
        from studio.train.trainer import causal_parts

        decoder, head, _, _ = causal_parts(model)
        self.every_position = head_on_every_position  # TRL's CPU head scores every position without calling it
        self.steps: list[dict[str, Any]] = []
        self._pending = self._empty()
        self._last, self._last_cpu = time.perf_counter(), time.process_time()
        decoder.register_forward_pre_hook(self._on_decoder, with_kwargs=True)
        head.register_forward_hook(self._on_head)
        _count_fused_head(head, self)

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {"real": 0, "positions": 0, "head": 0, "lengths": []}

    def _on_decoder(self, module, args, kwargs):
        if not torch.is_grad_enabled():
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        batch, width = ids.shape
        self._pending["real"] += int(mask.sum()) if mask is not None else ids.numel()
        self._pending["positions"] += ids.numel()
        self._pending["lengths"] += [width] * batch
        if self.every_position:
            self._pending["head"] += batch * (width - 1)

    def _on_head(self, module, args, output):
        if torch.is_grad_enabled():
            self._pending["head"] += args[0].numel() // args[0].shape[-1]

    def start(self) -> None:
        """The clocks of the first step start now."""
        self._last, self._last_cpu = time.perf_counter(), time.process_time()

    def step_end(self) -> None:
        """Close one optimiser step: its wall and CPU seconds, tokens and the torch thread count at its end.

        CPU seconds (this process, every thread) barely move with other processes' load at one thread, so they
        compare levers on a busy machine; with more threads they also count the threads' waits.
        """
        now, cpu = time.perf_counter(), time.process_time()
        self.steps.append({**self._pending, "seconds": now - self._last, "cpu_seconds": cpu - self._last_cpu,
                           "threads": torch.get_num_threads()})
        self._pending, self._last, self._last_cpu = self._empty(), now, cpu


def meter_callback(meter: Meter) -> Any:
    """A TrainerCallback that starts the meter with training and closes one step at each step end."""
    from transformers import TrainerCallback

    class MeterCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            meter.start()

        def on_step_end(self, args, state, control, **kwargs):
            meter.step_end()

    return MeterCallback()


def summarise_steps(steps: list[dict[str, Any]], shape: ModelShape, n_lora: int, warmup: int) -> dict[str, Any]:
    """Medians over the steps after `warmup`: seconds/step, real tokens/s, FLOP/s; padding over all steps."""
    measured = steps[warmup:] or steps
    flops = [training_flops(shape, n_lora, s["positions"], s["head"], s["lengths"]) for s in measured]
    real, positions = sum(s["real"] for s in steps), sum(s["positions"] for s in steps)
    return {
        "steps": len(steps), "measured_steps": len(measured),
        "seconds_per_step": statistics.median(s["seconds"] for s in measured),
        "tokens_per_second": statistics.median(s["real"] / s["seconds"] for s in measured),
        "tokens_per_cpu_second": statistics.median(s["real"] / max(s.get("cpu_seconds", 0.0), 1e-9) for s in measured),
        "flops_per_second": statistics.median(f / s["seconds"] for f, s in zip(flops, measured)),
        "flops_per_cpu_second": statistics.median(f / max(s.get("cpu_seconds", 0.0), 1e-9)
                                                  for f, s in zip(flops, measured)),
        "flops_per_real_token": sum(flops) / max(1, sum(s["real"] for s in measured)),
        "padding_fraction": 1 - real / positions if positions else 0.0,
        "head_share_of_positions": sum(s["head"] for s in steps) / positions if positions else 0.0,
        "real_tokens": real, "threads": statistics.median(s["threads"] for s in measured),
    }


def completion_loss(model: Any, features: list[Any], batch_size: int = 16) -> float:
    """Mean next-token loss over every answer token (EOS included) of the examples: the same yardstick for all."""
    import torch.nn.functional as F

    from studio.train.trainer import IGNORE_INDEX, _project, causal_parts

    decoder, head, cap, scale = causal_parts(model)
    was_training, total, count = model.training, 0.0, 0
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(features), batch_size):
            chunk = features[i:i + batch_size]
            width = max(len(f.input_ids) for f in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            labels = torch.full((len(chunk), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, f in enumerate(chunk):
                n = len(f.input_ids)
                ids[r, :n] = torch.tensor(f.input_ids)
                mask[r, :n] = 1
                labels[r, :n] = torch.tensor([t if m else IGNORE_INDEX for t, m in zip(f.input_ids, f.completion_mask)])
            hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state[:, :-1]
            target = labels[:, 1:]
            keep = target != IGNORE_INDEX
            logits = _project(head, hidden[keep], cap, scale).float()
            total += float(F.cross_entropy(logits, target[keep], reduction="sum"))
            count += int(keep.sum())
    model.train(was_training)
    return total / max(1, count)


def finish(model: Any, meter: Meter, features: list[Any], warmup: int, logged_losses: list[float],
            load_seconds: float, initial_adapter: str) -> dict[str, Any]:
    from bench.flops import lora_parameters, model_shape

    shape = model_shape(model)
    return {
        **summarise_steps(meter.steps, shape, lora_parameters(model), warmup),
        "final_loss": completion_loss(model, features),
        "last_logged_loss": logged_losses[-1] if logged_losses else None,
        "load_seconds": load_seconds, "initial_adapter": initial_adapter,
    }
