"""Lightweight adapter snapshots across a run (`train.snapshots`), and making one of them the run's adapter.

A LoRA adapter is megabytes (Gemma 3 270M, r=16 on every linear layer: about 15 MB), so a few snapshots cost
little next to a Trainer checkpoint (adapter + optimizer state, three times that). Only the adapter is saved: a
snapshot is for answering, never for resuming. Compare scores them to show when the model learned what
(`studio.evaluate.timeline`); the best one by a validation score can replace the run's adapter, with the final
adapter kept in `adapter-final/` so it can always come back.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from studio import runs
from studio.errors import RunError
from studio.runs import RunFolder


def snapshot_plan(max_steps: int, count: int) -> list[int]:
    """`count` steps spread evenly over the run, the last one included (fewer when the run has fewer steps)."""
    if count <= 0 or max_steps <= 0:
        return []
    return sorted({max(1, round(max_steps * k / count)) for k in range(1, count + 1)})


def save_snapshot(model: Any, folder: RunFolder, step: int) -> Path:
    """Write the model's adapter weights and config (nothing else) as the snapshot of `step`."""
    return folder.save_snapshot(step, lambda tmp: model.save_pretrained(str(tmp)))


class SnapshotCallback(TrainerCallback):
    """Saves the adapter at the planned steps, and at the last step when training ends early (stop, early stop)."""

    def __init__(self, folder: RunFolder, count: int) -> None:
        self.folder, self.count, self.plan = folder, count, set()

    def on_train_begin(self, args, state, control, **kwargs):
        """Plan the snapshot steps from the real number of optimiser steps."""
        self.plan = set(snapshot_plan(state.max_steps, self.count))

    def on_step_end(self, args, state, control, model=None, **kwargs):
        """The weights after this optimiser step are final for the step: snapshot them when planned."""
        if state.global_step in self.plan and model is not None:
            save_snapshot(model, self.folder, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        """A run that ended before its last planned step still gets its last step, so the timeline ends there."""
        if self.count and model is not None and state.global_step > 0 \
                and state.global_step not in self.folder.snapshot_steps():
            save_snapshot(model, self.folder, state.global_step)


def _copy_files(source: Path, target: Path) -> None:
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)


def use_snapshot(folder: RunFolder, step: int, choice: dict[str, Any]) -> Path:
    """Make the snapshot of `step` the run's adapter and record `choice` in run.json; the final adapter is kept.

    The first swap copies adapter/ to adapter-final/; adapter/ then gets the final adapter's tokenizer files with
    the snapshot's weights and config on top (written whole, then renamed into place).
    """
    if step not in folder.snapshot_steps():
        raise RunError(f"Run {folder.run_id} has no snapshot at step {step}.")
    if not folder.has_adapter() and not folder.final_adapter_dir.is_dir():
        raise RunError(f"Run {folder.run_id} has no saved adapter to replace.")
    if not folder.final_adapter_dir.is_dir():
        runs.replace_folder(folder.final_adapter_dir, lambda tmp: _copy_files(folder.adapter_dir, tmp))

    def write(tmp: Path) -> None:
        _copy_files(folder.final_adapter_dir, tmp)
        _copy_files(folder.snapshot_dir(step), tmp)

    adapter = folder.save_adapter(write)
    runs.update_run(folder.path, adapter_choice={**choice, "step": step})
    return adapter


def restore_final_adapter(folder: RunFolder) -> Path:
    """Put the final adapter back as the run's adapter (undoing `use_snapshot`)."""
    final = folder.final_adapter_dir
    if not final.is_dir():
        raise RunError(f"Run {folder.run_id} already uses its final adapter.")
    adapter = folder.save_adapter(lambda tmp: _copy_files(final, tmp))
    shutil.rmtree(final)
    runs.update_run(folder.path, adapter_choice=None)
    return adapter
