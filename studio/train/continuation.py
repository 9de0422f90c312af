"""Train more: a new run that starts from a completed run's adapter and optimizer state, on the same saved splits.

The new run gets its own folder, settings and learning-rate schedule (N more epochs or steps, warm-up and decay
as its settings say) and records its parent in run.json (`parent_run`, `parent_checkpoint`). Only training and
generation settings may change: the adapter's shape, the base model and the data are the parent's, and so is
the optimizer, whose saved moments (Adam's running averages) carry on where the parent stopped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer import OPTIMIZER_NAME

from studio import runs
from studio.data.dataset import Splits
from studio.errors import RunError, SettingsError, TrainingError
from studio.runs import RunFolder
from studio.settings import StudioSettings, apply_overrides

CHANGEABLE = ("train", "generation")


def continue_settings(parent: StudioSettings, overrides: dict[str, dict[str, Any]]) -> StudioSettings:
    """The parent's settings with train/generation overrides; `train.epochs` alone clears the parent's max_steps."""
    other = sorted(set(overrides) - set(CHANGEABLE))
    if other:
        raise SettingsError(f"Train more keeps the parent run's model, data and LoRA shape, so {other[0]}.* settings "
                            "cannot change; only train.* and generation.* can.")
    train = dict(overrides.get("train", {}))
    if "epochs" in train and "max_steps" not in train:
        train["max_steps"] = 0  # N more epochs: the parent's max_steps would otherwise win over them
    settings = apply_overrides(parent, {**overrides, "train": train})
    if settings.train.optimizer != parent.train.optimizer:
        raise SettingsError(f"Train more continues the parent's {parent.train.optimizer} optimizer state, so "
                            "train.optimizer cannot change.")
    return settings


def open_for_continue(root: Path, run_id: str, owner: str) -> tuple[runs.RunInfo, Path]:
    """(parent run info, its last checkpoint) of a completed run `owner` may train more; RunError otherwise."""
    info = runs.check_owner(runs.read_run(root, run_id), owner, "trained more")
    if info.status != "completed":
        raise RunError(f"Run {run_id} is {info.status}; Train more starts from a completed run "
                       "(Resume finishes a stopped or interrupted one).")
    checkpoint = info.folder.latest_checkpoint()
    if checkpoint is None or not (checkpoint / OPTIMIZER_NAME).is_file():
        raise RunError(f"Run {run_id} kept no checkpoint with its optimizer state, so it cannot be trained more; "
                       "start a new run instead.")
    return info, checkpoint


def parent_record(parent: runs.RunInfo, checkpoint: Path) -> dict[str, Any]:
    """What the new run's run.json says about where it came from."""
    return {"parent_run": parent.run_id, "parent_checkpoint": checkpoint.name,
            "parent_step": runs.checkpoint_step(checkpoint)}


def saved_splits(run_dir: Path) -> Splits:
    """The splits a run saved when it started (resume and Train more train on exactly these rows)."""
    folder = RunFolder(run_dir)
    splits = {name: folder.read_split(name, required=name != "validation") for name in ("train", "test", "validation")}
    return Splits(**splits, counts={name: len(rows) for name, rows in splits.items()})


def with_parent_adapter(model: Any, checkpoint: Path) -> Any:
    """The base model wrapped with the parent's trained adapter, trainable (build_trainer keeps it as it is)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)


class LoadOptimizerState(TrainerCallback):
    """Starts the optimizer from the parent checkpoint's state; learning rates stay those of the new schedule."""

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        """Load the saved moments into the freshly created optimizer, keeping its own hyperparameters."""
        saved = torch.load(self.checkpoint / OPTIMIZER_NAME, map_location="cpu", weights_only=True)
        current = optimizer.state_dict()
        shapes = [len(g["params"]) for g in current["param_groups"]]
        if [len(g["params"]) for g in saved["param_groups"]] != shapes:
            raise TrainingError("The parent run's optimizer state does not fit this adapter, so it cannot be trained "
                                "more; start a new run instead.")
        # The parent's last learning rate (near 0 at the end of a decay) must not leak into the first new step.
        saved["param_groups"] = [{**mine, "params": theirs["params"]}
                                 for mine, theirs in zip(current["param_groups"], saved["param_groups"])]
        optimizer.load_state_dict(saved)
