"""Settings -> peft `LoraConfig` and TRL `SFTConfig`: the one place this mapping lives.

The reproducibility bundle (`studio.publish.reproduce`) reads its `trl sft` config off the very objects built here,
so the run and its bundle cannot drift apart.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from trl import SFTConfig

from studio.errors import SettingsError, TrainingError
from studio.settings import LoraSettings, StudioSettings

# peft's own spelling for "every linear layer but the output head" when no model is at hand to list them.
ALL_LINEAR = "all-linear"
# train.report_to -> (the package to install, the modules any of which the Trainer's callback can use)
TRACKERS = {"tensorboard": ("tensorboard", ("tensorboard", "tensorboardX")), "trackio": ("trackio", ("trackio",))}
TRACKIO_PROJECT = "instruction-tuning-studio"


def report_to(tracker: str) -> str:
    """The Trainer's report_to for train.report_to, or SettingsError naming the package to install."""
    if tracker == "none":
        return "none"
    package, modules = TRACKERS[tracker]
    if not any(importlib.util.find_spec(module) for module in modules):
        raise SettingsError(f"train.report_to {tracker} needs the {package} package; install it with pip install "
                            f"{package}, or set train.report_to to none.")
    return tracker


def resolve_precision(precision: str) -> tuple[bool, bool]:
    """(bf16, fp16) for the Trainer: fp32 on a CPU, bf16 on a GPU that supports it, else fp16."""
    if not torch.cuda.is_available():
        if precision in ("bf16", "fp16"):
            raise SettingsError(f"train.precision {precision} needs a GPU; use auto or fp32 on this machine.")
        return False, False
    if precision == "fp32":
        return False, False
    if precision == "bf16" or (precision == "auto" and torch.cuda.is_bf16_supported()):
        return True, False
    return False, True


def build_lora_config(lora: LoraSettings, model: Any = None) -> LoraConfig:
    """The peft LoraConfig for these settings; empty target_modules means every linear layer but the head.

    With the model, the targets are checked against it and listed by name; without one (a bundle for a run that
    is not loaded) they stay peft's `all-linear`.
    """
    from studio.model.info import default_target_modules

    if model is None:
        targets: Any = list(lora.target_modules) or ALL_LINEAR
    else:
        targets = list(lora.target_modules) or default_target_modules(model)
        leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [t for t in targets if t not in leaves]
        if missing:
            raise SettingsError(f"lora.target_modules names {', '.join(missing)}, which this model does not have.")
    return LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
        bias=lora.bias, task_type="CAUSAL_LM",
    )


class StudioSFTConfig(SFTConfig):
    """TRL's SFTConfig, leaving a model on the CPU where it is.

    A launched process's device is `cpu:0` (accelerate names the rank's device), and `Tensor.to("cpu:0")` copies a
    tensor that is on `cpu`: the Trainer's placement would copy the whole model in every process (about 6 s and a
    second copy of the weights for the embedded model on 2 busy cores). The model is loaded on the CPU already;
    `place_model_on_device` is the hook transformers documents for this (None: the Trainer decides, as before).
    """

    @property
    def place_model_on_device(self) -> bool | None:
        """False on a CPU (nothing to move); the Trainer's own rule elsewhere."""
        return False if self.device.type == "cpu" else None


def build_sft_config(
    settings: StudioSettings, output_dir: Path, n_train: int, has_eval: bool, num_processes: int = 1,
) -> StudioSFTConfig:
    """The TRL SFTConfig for these settings (checkpoints go to output_dir).

    `num_processes` > 1 (each process of a launched run builds it): every process draws the same batches of
    batch_size x processes rows from one sampler and takes its slice (accelerate's split_batches), so the order of
    the rows, the steps per epoch and the length grouping are those of one process with that batch, by construction.
    """
    if n_train < 1:
        raise TrainingError("There are no training examples left to train on.")
    t = settings.train
    bf16, fp16 = resolve_precision(t.precision)
    eval_by_steps = has_eval and t.eval_steps > 0
    split = {"accelerator_config": {"split_batches": True}} if num_processes > 1 else {}
    return StudioSFTConfig(
        **split,
        output_dir=str(output_dir),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps if t.max_steps > 0 else -1,
        per_device_train_batch_size=t.batch_size * num_processes,
        per_device_eval_batch_size=t.batch_size * num_processes,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps,
        optim=t.optimizer,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        bf16=bf16,
        fp16=fp16,
        use_cpu=not torch.cuda.is_available(),
        # transformers 5 renamed gradient_checkpointing to activation_checkpointing (TRL's default is True).
        activation_checkpointing=t.gradient_checkpointing,
        # Non-reentrant checkpointing works with frozen embeddings (LoRA) without forcing input grads.
        activation_checkpointing_kwargs={"use_reentrant": False} if t.gradient_checkpointing else None,
        max_length=settings.data.max_length,
        completion_only_loss=t.completion_only_loss,
        # Our rows are already tokenised with labels by studio.data.formatting (what the Data tab previews).
        dataset_kwargs={"skip_prepare_dataset": True},
        packing=False,
        padding_free=False,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if eval_by_steps else "no",
        eval_steps=t.eval_steps if eval_by_steps else None,
        # With save_steps 0 the callback still checkpoints at the last step and on stop.
        save_strategy="steps" if t.save_steps > 0 else "no",
        save_steps=t.save_steps if t.save_steps > 0 else 500,
        save_total_limit=2,
        # TensorBoard writes into output_dir/runs/ (RunFolder.tensorboard_dir); trackio logs locally, one run per
        # studio run, under one project.
        report_to=report_to(t.report_to),
        project=TRACKIO_PROJECT,
        run_name=Path(output_dir).parent.name,
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
    )


def estimate_total_steps(n_train: int, settings: StudioSettings) -> int:
    """Optimiser steps the Trainer will take: max_steps, else ceil(epochs * ceil(batches per epoch / accumulation)),
    a batch being batch_size x num_processes rows."""
    t = settings.train
    if t.max_steps > 0:
        return t.max_steps
    batches = math.ceil(n_train / (t.batch_size * t.num_processes))
    return max(1, math.ceil(t.epochs * math.ceil(batches / t.grad_accum)))
