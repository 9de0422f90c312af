"""Settings -> LoraConfig/SFTConfig (the one place), and the named steps of a training run.

The steps: prepare data -> load model -> tokenize -> build the trainer -> train -> save the adapter.
`TrainingJob` (in studio.jobs, importable from here) runs them in a thread; each step is a plain function here.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from peft import LoraConfig
from trl import SFTConfig

from studio import runs
from studio.errors import RunError, SettingsError, StudioError, TrainingError
from studio.settings import LoraSettings, StudioSettings
from studio.trainer import IGNORE_INDEX, FastSFTTrainer, ThreadBalancer

if TYPE_CHECKING:
    from datasets import Dataset

    from studio.dataset import Splits
    from studio.formatting import Features
    from studio.templates import PromptTemplate

RESUMABLE = ("stopped", "interrupted", "failed")
OOM_PHRASES = ("out of memory", "can't allocate memory")  # CUDA's and the CPU allocator's wording


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


def build_lora_config(lora: LoraSettings, model: Any) -> LoraConfig:
    """The peft LoraConfig for these settings; empty target_modules means every linear layer but the head."""
    from studio.modeling import default_target_modules

    targets = list(lora.target_modules) or default_target_modules(model)
    leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in leaves]
    if missing:
        raise SettingsError(f"lora.target_modules names {', '.join(missing)}, which this model does not have.")
    return LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
        bias=lora.bias, task_type="CAUSAL_LM",
    )


def build_sft_config(settings: StudioSettings, output_dir: Path, n_train: int, has_eval: bool) -> SFTConfig:
    """The TRL SFTConfig for these settings (checkpoints go to output_dir)."""
    if n_train < 1:
        raise TrainingError("There are no training examples left to train on.")
    t = settings.train
    bf16, fp16 = resolve_precision(t.precision)
    eval_by_steps = has_eval and t.eval_steps > 0
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps if t.max_steps > 0 else -1,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
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
        # Our rows are already tokenised with labels by studio.formatting (what the Data tab previews).
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
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
    )


def estimate_total_steps(n_train: int, settings: StudioSettings) -> int:
    """Optimiser steps the Trainer will take: max_steps, else ceil(epochs * ceil(batches per epoch / accumulation))."""
    t = settings.train
    if t.max_steps > 0:
        return t.max_steps
    batches = math.ceil(n_train / t.batch_size)
    return max(1, math.ceil(t.epochs * math.ceil(batches / t.grad_accum)))


def prepare_data(settings: StudioSettings, token: str | None = None) -> Splits:
    """Load the dataset source and split it (train / test / validation)."""
    from studio.dataset import load_source, prepare_splits

    d = settings.data
    loaded = load_source(d.dataset, column_map=d.column_map or None, hub_split=d.hub_split, token=token)
    return prepare_splits(loaded, d)


def write_splits(run_dir: Path, splits: Splits) -> None:
    """Save the splits as JSON lines under run_dir/data (Compare and reports read them back)."""
    folder = run_dir / "data"
    folder.mkdir(exist_ok=True)  # no parents: a run folder deleted meanwhile must not be recreated
    for name in ("train", "test", "validation"):
        examples = getattr(splits, name, None) or []
        if name == "validation" and not examples:
            continue
        lines = [json.dumps(e.to_row(), ensure_ascii=False) for e in examples]
        (folder / f"{name}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def features_to_dataset(features: list[Features], completion_only_loss: bool = True) -> Dataset:
    """A datasets.Dataset of input_ids, labels (-100 where untrained) and length; rows with nothing to learn go."""
    from datasets import Dataset

    rows: dict[str, list] = {"input_ids": [], "labels": [], "length": []}
    for f in features:
        ids = list(f.input_ids)
        labels = [t if m or not completion_only_loss else IGNORE_INDEX for t, m in zip(ids, f.completion_mask)]
        # Position 0 is never predicted, so a row needs a trained label after it.
        if all(label == IGNORE_INDEX for label in labels[1:]):
            continue
        rows["input_ids"].append(ids)
        rows["labels"].append(labels)
        rows["length"].append(len(ids))
    return Dataset.from_dict(rows)


def tokenize_splits(
    tokenizer: Any, template: PromptTemplate, splits: Splits, settings: StudioSettings,
) -> tuple[Dataset, Dataset | None]:
    """(train dataset, validation dataset or None), tokenised exactly as the Data tab previews."""
    from studio.formatting import tokenize_dataset

    max_length, only = settings.data.max_length, settings.train.completion_only_loss
    train = features_to_dataset(tokenize_dataset(tokenizer, template, splits.train, max_length), only)
    if len(train) == 0:
        raise TrainingError("No training example has any answer tokens left after truncation; raise data.max_length.")
    validation = list(getattr(splits, "validation", None) or [])
    if not validation:
        return train, None
    evaluation = features_to_dataset(tokenize_dataset(tokenizer, template, validation, max_length), only)
    return train, (evaluation if len(evaluation) else None)


def build_trainer(
    model: Any, tokenizer: Any, settings: StudioSettings, output_dir: Path,
    train_dataset: Dataset, eval_dataset: Dataset | None = None, callbacks: list | None = None,
) -> FastSFTTrainer:
    """Wrap the base model with LoRA and build the fast SFT trainer around it."""
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import PrinterCallback

    tokenizer.padding_side = "right"  # training pads on the right; generation switches to left
    if getattr(model, "is_loaded_in_4bit", False):  # QLoRA: fp32 norms/head, input grads for checkpointing
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=settings.train.gradient_checkpointing)
    if not isinstance(model, PeftModel):
        model = get_peft_model(model, build_lora_config(settings.lora, model))
    args = build_sft_config(settings, output_dir, len(train_dataset), eval_dataset is not None)
    callbacks = list(callbacks or [])
    if settings.train.threads == 0 and not torch.cuda.is_available():
        callbacks.append(ThreadBalancer())
    trainer = FastSFTTrainer(
        model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        processing_class=tokenizer, callbacks=callbacks, fast_loss=settings.train.fast_loss,
    )
    trainer.remove_callback(PrinterCallback)  # our callback reports; the printer would spam stdout
    return trainer


def set_threads(settings: StudioSettings) -> int:
    """Use train.threads CPU threads for torch (0: every core, then ThreadBalancer adapts) and return the number."""
    threads = settings.train.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint-N folder under run_dir/checkpoints (half-written ones skipped), or None."""
    folder = run_dir / "checkpoints"
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    found.sort(key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    return next((p for p in found if checkpoint_complete(p)), None)


def checkpoint_complete(checkpoint: Path) -> bool:
    """True when the Trainer finished writing the checkpoint: trainer_state.json, written last, reads back whole.

    The Trainer writes a checkpoint file by file in place, so a process killed mid-save leaves a partial folder.
    """
    try:
        return isinstance(json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def save_adapter(model: Any, tokenizer: Any, run_dir: Path) -> Path:
    """Write the LoRA adapter and tokenizer to run_dir/adapter (via a temp folder, so it is never half written)."""
    target, tmp = run_dir / "adapter", run_dir / ".adapter.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def open_for_resume(root: Path, run_id: str, owner: str) -> tuple[runs.RunInfo, StudioSettings, Path]:
    """(run info, its saved settings, its last checkpoint) of a run `owner` may resume; RunError otherwise."""
    info = runs.read_run(root, run_id)
    if info.owner and info.owner != owner:
        raise RunError("This run belongs to another session, so it cannot be resumed from here.")
    if info.status not in RESUMABLE:
        raise RunError(f"Run {run_id} is {info.status}; only a stopped, interrupted or failed run can be resumed.")
    checkpoint = latest_checkpoint(info.path)
    if checkpoint is None:
        raise RunError(f"Run {run_id} has no checkpoint to resume from; start a new run instead.")
    runs.update_run(info.path, status="queued", error="", message="", resumed_from=checkpoint.name)
    return info, runs.read_settings(info.path), checkpoint


def outcome_message(step: int, total: int, stopped: bool, adapter: Path | None) -> str:
    """What was trained and where the adapter is, as one plain sentence."""
    if adapter is None or step == 0:
        return "No steps were trained before the stop, so no adapter was saved."
    where = display_path(adapter)
    if stopped:
        return f"Stopped at step {step} of {total}; the adapter trained so far is saved in {where}."
    return f"Trained {step} steps; the adapter is saved in {where}."


def display_path(path: Path) -> str:
    """The path relative to the working folder when it is inside it (shorter to read), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def failure_message(exc: BaseException, settings: StudioSettings) -> str:
    """One sentence for the UI: studio errors as they are, out-of-memory as advice, anything else summarised."""
    from studio.resources import oom_message

    if isinstance(exc, StudioError):
        return str(exc)
    text = str(exc)
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or any(p in text.lower() for p in OOM_PHRASES):
        return oom_message(settings)
    first = text.strip().splitlines()[0][:200].rstrip(".") if text.strip() else ""
    return f"Training failed with {type(exc).__name__}" + (f": {first}." if first else ".")


def __getattr__(name: str) -> Any:
    # TrainingJob lives in studio.jobs, which imports this module; resolving it lazily avoids an import cycle.
    if name in {"TrainingJob", "JobQueue", "queue_position", "default_queue"}:
        from studio import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
