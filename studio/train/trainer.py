"""The fast SFT trainer: logits only where the loss is taken, no full-vocabulary metrics, real tokens counted.

Why it is faster than TRL's defaults on a CPU: Gemma 3's output head is 640 x 262,144, more FLOPs than the rest of
the model. TRL scores every position through the head on non-Triton devices and also computes entropy and token
accuracy over the full vocabulary; here the decoder runs to hidden states, only positions whose next token is
trained go through the head, and no extra metrics are computed; on a CPU the head's cross-entropy and its gradient
take one pass over the head's weights (`studio.train.fused_head`). What each of these is worth: `python -m bench
levers`, the README's levers table. The top-level model's forward is therefore not called during training: hooks
meant to fire per step belong on `model.get_decoder()`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from trl import SFTTrainer

from studio import compat
from studio.train.fused_head import fused_head_applies, head_cross_entropy_sum

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
    model: nn.Module, inputs: dict[str, torch.Tensor], num_items_in_batch: Any = None, fused_head: bool = False,
) -> torch.Tensor:
    """Next-token loss with the output head applied only at positions whose label is trained (with `fused_head`,
    through `studio.train.fused_head` where it applies: training a frozen fp32 head on a CPU)."""
    decoder, head, cap, scale = causal_parts(model)
    hidden = decoder(
        input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False
    ).last_hidden_state
    labels = inputs["labels"][:, 1:].to(hidden.device)
    mask = labels != IGNORE_INDEX
    # Boolean indexing gathers the trained positions: (n_trained, hidden) instead of (batch, seq, hidden).
    trained = hidden[:, :-1][mask]
    if fused_head and trained.requires_grad and fused_head_applies(head, trained):
        loss_sum = head_cross_entropy_sum(trained, head, labels[mask], cap, scale)
    else:  # evaluation (no gradient wanted: one pass over the head either way), or a head the fused path can't take
        logits = _project(head, trained, cap, scale).float()
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


def average_gradients(model: nn.Module, processes: int) -> None:
    """Average the trainable parameters' gradients over every process, in one all-reduce of one flat buffer."""
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= processes
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_trainable(model: nn.Module) -> None:
    """Rank 0's trainable parameters (the adapter) copied to every process, in one broadcast of one flat buffer."""
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    dist.broadcast(flat, src=0)
    offset = 0
    with torch.no_grad():
        for p in params:
            p.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()


def without_init_sync(handler: Any) -> Any:
    """Accelerate's DDP kwargs handler, plus DDP's `init_sync=False` (the handler has no field for it)."""
    from dataclasses import dataclass, fields

    from accelerate.utils import DistributedDataParallelKwargs

    @dataclass
    class NoInitSync(DistributedDataParallelKwargs):
        init_sync: bool = True

    given = {f.name: getattr(handler, f.name) for f in fields(handler)} if handler is not None else {}
    return NoInitSync(**given, init_sync=False)


class FastSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss skips the full-vocabulary logits and metrics, and which counts real tokens."""

    def __init__(self, *args: Any, fast_loss: bool = True, fused_head: bool = True, **kwargs: Any) -> None:
        compat.check_trainer_save_hook()  # _save below overrides a private hook of transformers' Trainer
        super().__init__(*args, **kwargs)
        self.fast_loss, self.fused_head = fast_loss, fused_head
        self.real_tokens = 0  # non-padding tokens seen in training, for tokens/s

    def create_accelerator_and_postprocess(self) -> None:
        """The Trainer's accelerator, told to leave a model on the CPU where it is (`config.StudioSFTConfig` says
        why: a launched process's `cpu:0` device would copy the whole model again in `prepare`)."""
        from accelerate.utils import DistributedType

        super().create_accelerator_and_postprocess()
        if self.accelerator.device.type != "cpu":
            return
        self.accelerator.device_placement = False
        if self.accelerator.distributed_type == DistributedType.MULTI_CPU:  # DDP; FSDP shards what trains
            # DDP's set-up broadcasts every weight from rank 0 (1 GB over gloo: seconds before the first step), though
            # each process loaded the same frozen base from the same file; the first step broadcasts only what
            # trains (`broadcast_trainable`), which covers any difference in the adapter's start.
            self.accelerator.ddp_handler = without_init_sync(self.accelerator.ddp_handler)
            self._adapter_synced = False

    @property
    def syncs_by_hand(self) -> bool:
        """True under DDP: the fast loss calls the decoder past DDP's forward, so DDP's own gradient reduction never
        arms, and `training_step` averages the gradients instead (FSDP and DeepSpeed keep their own path)."""
        from accelerate.utils import DistributedType

        return self.accelerator.distributed_type in (DistributedType.MULTI_CPU, DistributedType.MULTI_GPU) \
            and self.fast_loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        """The Trainer's step; under DDP with the fast loss, the gradients are then averaged over the processes at
        the micro-step that ends an optimiser step (before clipping, as DDP would)."""
        if not getattr(self, "_adapter_synced", True):
            broadcast_trainable(self.model)
            self._adapter_synced = True
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.accelerator.num_processes > 1 and self.syncs_by_hand and self.accelerator.sync_gradients:
            average_gradients(self.model, self.accelerator.num_processes)
        return loss

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        """Trainer._save minus the tokenizer: checkpoints are for resume and Train more, which take the tokenizer
        from the base model, and rewriting Gemma's large tokenizer at every checkpoint is wasted time (the adapter
        folder keeps a copy)."""
        tokenizer, self.processing_class = self.processing_class, None
        try:
            super()._save(output_dir, state_dict)
        finally:
            self.processing_class = tokenizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Completion loss through the fast path (or the full-logits reference path when fast_loss is off)."""
        if return_outputs:  # only prediction with logits needs them; keep TRL's behaviour there
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if model.training else "eval"
        processes = self.accelerator.num_processes
        if processes > 1 and not self.syncs_by_hand:  # FSDP / DeepSpeed: only their own forward gathers the weights
            loss = reference_completion_loss(model, inputs, num_items_in_batch)
        elif self.fast_loss:
            if processes > 1:  # DDP: the loss reads the decoder and head directly (gradients averaged by hand)
                model = self.accelerator.unwrap_model(model)
            loss = fast_completion_loss(model, inputs, num_items_in_batch, fused_head=self.fused_head)
        else:
            loss = reference_completion_loss(model, inputs, num_items_in_batch)
        if processes > 1 and num_items_in_batch is not None and self.args.average_tokens_across_devices:
            # num_items_in_batch counts the answer tokens of every process, and DDP averages the gradients over the
            # processes: scaled by their number, the gradient is that of one process with the whole batch (as
            # transformers' own compute_loss does).
            loss = loss * processes
        if mode == "train":
            mask = inputs.get("attention_mask")
            self.real_tokens += int(mask.sum()) if mask is not None else inputs["input_ids"].numel()
            compat.log_metric(self, mode, "num_tokens", self.real_tokens)
        return loss
