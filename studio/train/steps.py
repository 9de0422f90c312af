"""The named steps of a training run: prepare data -> load the model -> tokenize -> build the trainer -> train -> save
the adapter.

`TrainingJob` (studio.jobs) runs them in a thread; each step is a plain function here. Settings become
`LoraConfig`/`SFTConfig` in `studio.train.config`.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from studio import runs
from studio.errors import RunError, StudioError, TrainingError
from studio.runs import RunFolder
from studio.settings import StudioSettings
from studio.train import continuation
from studio.train.callbacks import BalanceThreads
from studio.train.config import build_lora_config, build_sft_config
from studio.train.early_stopping import EarlyStopping
from studio.train.snapshots import SnapshotCallback
from studio.train.trainer import IGNORE_INDEX, FastSFTTrainer

if TYPE_CHECKING:
    from datasets import Dataset

    from studio.data.dataset import Splits
    from studio.data.formatting import Features
    from studio.data.templates import PromptTemplate
    from studio.model.loading import LoadedModel

ModelLoader = Callable[..., Any]  # (ModelSettings, token=None) -> studio.model.loading.LoadedModel
Log = Callable[[str], None]  # where a step says what it did (the job's log)

RESUMABLE = ("stopped", "interrupted", "failed")
OOM_PHRASES = ("out of memory", "can't allocate memory")  # CUDA's and the CPU allocator's wording


def prepare_data(settings: StudioSettings, token: str | None = None) -> Splits:
    """Load the dataset source and split it (train / test / validation)."""
    from studio.data.dataset import load_settings_source, prepare_splits

    return prepare_splits(load_settings_source(settings.data, token), settings.data)


def write_splits(run_dir: Path, splits: Splits) -> None:
    """Save the splits in the run folder (Compare, reports and the bundle read them back)."""
    RunFolder(run_dir).write_splits({"train": splits.train, "test": splits.test,
                                     "validation": list(getattr(splits, "validation", None) or [])})


def run_splits(settings: StudioSettings, token: str | None, run_dir: Path, saved: Path | None, log: Log) -> Splits:
    """The run's splits: those saved in the `saved` run folder when given, else freshly prepared; kept in `run_dir`."""
    splits = continuation.saved_splits(saved) if saved else prepare_data(settings, token)
    if saved != run_dir:  # a resumed run reads its own folder's splits: they are there already
        write_splits(run_dir, splits)
    extra = f" / {len(splits.validation)} validation" if getattr(splits, "validation", None) else ""
    log(f"Loaded {len(splits.train)} train / {len(splits.test)} test{extra} rows")
    return splits


def load_model(
    settings: StudioSettings, token: str | None, model_loader: ModelLoader | None, runs_root: Path, log: Log,
) -> LoadedModel:
    """Load the base model (through `model_loader` when given), then refuse a run that cannot fit (TrainingError)."""
    from studio.model.info import model_title
    from studio.model.loading import load_base_model

    if model_loader is not None:
        loaded = model_loader(settings.model, token=token)
    else:
        loaded = load_base_model(settings.model, token=token, load_in_4bit=settings.train.load_in_4bit)
    cache = " (from the fp32 cache)" if loaded.from_cache else ""
    log(f"Loaded model {model_title(loaded.name)} in {loaded.load_seconds:.1f} s{cache}")
    check_resources(settings, loaded.model, runs_root, log)
    return loaded


def check_resources(settings: StudioSettings, model: Any, runs_root: Path, log: Log) -> None:
    """Refuse a run that cannot fit in memory or on disk (TrainingError); log softer warnings."""
    from studio.model import resources
    from studio.model.info import model_info

    device = "cuda" if torch.cuda.is_available() else "cpu"
    info = model_info(model)
    problem = resources.blocking_problem(settings, info, device, runs_root=runs_root)
    if problem:
        raise TrainingError(problem)
    for warning in resources.check_resources(settings, info, device, runs_root=runs_root):
        log(warning)


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
    from studio.data.formatting import tokenize_dataset

    max_length, only = settings.data.max_length, settings.train.completion_only_loss
    train = features_to_dataset(tokenize_dataset(tokenizer, template, splits.train, max_length), only)
    if len(train) == 0:
        raise TrainingError("No training example has any answer tokens left after truncation; raise data.max_length.")
    validation = list(getattr(splits, "validation", None) or [])
    if not validation:
        return train, None
    evaluation = features_to_dataset(tokenize_dataset(tokenizer, template, validation, max_length), only)
    return train, (evaluation if len(evaluation) else None)


def tokenize(
    tokenizer: Any, splits: Splits, settings: StudioSettings, log: Log,
) -> tuple[PromptTemplate, Dataset, Dataset | None]:
    """(the settings' template, train dataset, validation dataset or None), as `tokenize_splits` makes them."""
    from studio.data.templates import template_for

    template = template_for(settings.data, tokenizer)
    train, evaluation = tokenize_splits(tokenizer, template, splits, settings)
    max_length = settings.data.max_length
    log(f"Tokenized {len(train)} training examples ({sum(train['length'])} tokens, max length {max_length})")
    return template, train, evaluation


def build_trainer(
    model: Any, tokenizer: Any, settings: StudioSettings, output_dir: Path,
    train_dataset: Dataset, eval_dataset: Dataset | None = None, callbacks: list | None = None,
    num_processes: int = 1,
) -> FastSFTTrainer:
    """Wrap the base model with LoRA and build the fast SFT trainer around it (`num_processes` > 1: in each process
    of a launched run, `studio.train.worker`).

    TRL's collator pads on the right by itself, so the (shared) tokenizer's padding side is left alone.
    """
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import PrinterCallback, set_seed

    if getattr(model, "is_loaded_in_4bit", False):  # QLoRA: fp32 norms/head, input grads for checkpointing
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=settings.train.gradient_checkpointing)
    if not isinstance(model, PeftModel):
        # LoRA draws its initial A matrices from torch's global generator: seeding here (as TRL does) makes them a
        # function of train.seed rather than of whatever the process did before. The Trainer reseeds for batch
        # order and dropout with the same seed.
        set_seed(settings.train.seed)
        model = get_peft_model(model, build_lora_config(settings.lora, model))
    args = build_sft_config(settings, output_dir, len(train_dataset), eval_dataset is not None, num_processes)
    callbacks = list(callbacks or [])
    # Launched processes keep their share of the cores: one adapting its count would take another's.
    if settings.train.balance_threads and not torch.cuda.is_available() and num_processes == 1:
        callbacks.append(BalanceThreads(limit=settings.train.threads or None))  # never above a count asked for
    trainer = FastSFTTrainer(
        model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        processing_class=tokenizer, callbacks=callbacks, fast_loss=settings.train.fast_loss,
        fused_head=settings.train.fused_head,
    )
    trainer.remove_callback(PrinterCallback)  # our callback reports; the printer would spam stdout
    return trainer


def extra_callbacks(
    settings: StudioSettings, folder: RunFolder, on_early_stop: Callable[[str], None], parent_checkpoint: Path | None,
) -> list[Any]:
    """Snapshots, early stopping and (Train more) the parent checkpoint's optimizer state."""
    t = settings.train
    more: list[Any] = [SnapshotCallback(folder, t.snapshots)]
    if t.early_stopping_patience:
        more.append(EarlyStopping(t.early_stopping_patience, t.early_stopping_min_delta, on_early_stop))
    if parent_checkpoint is not None:  # a resumed run loads its own optimizer state from its checkpoint instead
        more.append(continuation.LoadOptimizerState(parent_checkpoint))
    return more


def save_adapter(model: Any, tokenizer: Any, run_dir: Path) -> Path:
    """Write the LoRA adapter and tokenizer into the run folder (whole, never half written)."""
    def save(folder: Path) -> None:
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))

    return RunFolder(run_dir).save_adapter(save)


def open_for_resume(root: Path, run_id: str, owner: str) -> tuple[runs.RunInfo, StudioSettings, Path]:
    """(run info, its saved settings, its last checkpoint) of a run `owner` may resume; RunError otherwise."""
    info = runs.read_run(root, run_id)
    if info.owner and info.owner != owner:
        raise RunError("This run belongs to another session, so it cannot be resumed from here.")
    if info.status not in RESUMABLE:
        raise RunError(f"Run {run_id} is {info.status}; only a stopped, interrupted or failed run can be resumed.")
    checkpoint = info.folder.latest_checkpoint()
    if checkpoint is None:
        raise RunError(f"Run {run_id} has no checkpoint to resume from; start a new run instead.")
    runs.update_run(info.path, status="queued", error="", message="", resumed_from=checkpoint.name)
    return info, info.folder.read_settings(), checkpoint


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
    from studio.model.resources import oom_message

    if isinstance(exc, StudioError):
        return str(exc)
    text = str(exc)
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or any(p in text.lower() for p in OOM_PHRASES):
        return oom_message(settings)
    first = text.strip().splitlines()[0][:200].rstrip(".") if text.strip() else ""
    return f"Training failed with {type(exc).__name__}" + (f": {first}." if first else ".")
