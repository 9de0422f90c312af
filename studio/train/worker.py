"""One process of a launched run: `accelerate launch ... -m studio.train.worker RUN_DIR [options]`, or a rank
forked by `studio.train.forklaunch` (CPUs without a config file), which calls `main` with the same options.

Every rank runs the same steps as a run inside the app (`studio.train.steps`: the saved splits, the model, the
template's tokens and masks, the same `FastSFTTrainer` with its callbacks) on the run folder `studio.train.launch`
prepared; rank 0 alone writes: metrics.jsonl, checkpoints (the Trainer's own rule), snapshots, the adapter and
`launch.json` (the step count, then the outcome or the one-sentence error). The app's
job writes run.json; nothing here does.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from studio.runs import RunFolder
from studio.settings import StudioSettings
from studio.train import continuation, processes, steps
from studio.train.callbacks import MetricsCallback, StopBeforeFirstStep
from studio.train.snapshots import SnapshotCallback


def parse_args(argv: list[str]) -> argparse.Namespace:
    """RUN_DIR and the launch's options (see `studio.train.launch.launch_command`)."""
    p = argparse.ArgumentParser(prog="python -m studio.train.worker", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--threads", type=int, default=1, help="CPU threads of this process")
    p.add_argument("--app-pid", type=int, default=0, help="the app's process: its end stops training after a step")
    p.add_argument("--resume", type=Path, default=None, help="a checkpoint of this run to resume from")
    p.add_argument("--parent", type=Path, default=None, help="Train more: the parent run's checkpoint")
    p.add_argument("--loader", default="", help="module:name of a model loader to use instead of the studio's")
    return p.parse_args(argv)


def rank() -> int:
    """This process's global rank (0 when not launched)."""
    return int(os.environ.get("RANK", "0"))


def alive(pid: int) -> bool:
    """True while process `pid` runs (0: no process to watch)."""
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _all_reduce(value: float, device: Any, op: str) -> float:
    """`value` summed ("sum") or maximised ("max") over every process (itself when not distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    tensor = torch.tensor([value], dtype=torch.float64 if device.type == "cpu" else torch.float32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return float(tensor.item())


class SharedStop(TrainerCallback):
    """After each step, every process learns whether any of them saw a Stop (the stop file) or the app gone, in one
    all-reduce: they then all end after the same step, so none waits forever in a collective the others left."""

    def __init__(self, folder: RunFolder, app_pid: int, event: threading.Event) -> None:
        self.folder, self.app_pid, self.event = folder, app_pid, event

    def on_step_end(self, args, state, control, **kwargs):
        """Set the shared stop event when any process asks for it (MetricsCallback then stops and checkpoints)."""
        asked = self.folder.stop_file.exists() or not alive(self.app_pid)
        if _all_reduce(1.0 if asked else 0.0, args.device, "max") > 0:
            self.event.set()


class Rank0Report:
    """What rank 0 tells the app: records into metrics.jsonl, the step count and outcome into launch.json."""

    def __init__(self, folder: RunFolder, writes: bool) -> None:
        self.folder, self.writes, self.stop_reason = folder, writes, ""

    def record(self, record: dict[str, Any]) -> None:
        """A metrics record, appended to metrics.jsonl (rank 0 only)."""
        if self.writes:
            self.folder.append_metric(record)

    def update(self, **values: Any) -> None:
        """Merge values into launch.json (rank 0 only)."""
        if self.writes:
            report = self.folder.read_json(self.folder.launch_file) if self.folder.launch_file.is_file() else {}
            self.folder.write_json(self.folder.launch_file, {**report, **values})

    def early_stop(self, reason: str) -> None:
        """Early stopping's sentence, kept for the outcome."""
        self.stop_reason = reason


def load_model(settings: StudioSettings, loader: str, runs_root: Path, log: steps.Log) -> Any:
    """The base model, through the app's injected loader when it named one (`module:name`)."""
    from importlib import import_module

    model_loader = None
    if loader:
        module, name = loader.split(":", 1)
        model_loader = getattr(import_module(module), name)
    return steps.load_model(settings, os.environ.get("HF_TOKEN"), model_loader, runs_root, log)


def train(args: argparse.Namespace, report: Rank0Report, log: steps.Log) -> None:
    """The run's steps in this process; rank 0 saves the adapter and reports the outcome."""
    folder = RunFolder(args.run_dir)
    settings = folder.read_settings()
    splits = continuation.saved_splits(folder.path)
    loaded = load_model(settings, args.loader, folder.path.parent, log)
    _, train_ds, eval_ds = steps.tokenize(loaded.tokenizer, splits, settings, log)
    stop = threading.Event()
    last = (folder.read_metrics() or [{}])[-1] if args.resume else {}  # a resumed run goes on from its last record
    metrics = MetricsCallback(report.record, stop, skip_until_step=int(last.get("step") or 0),
                              elapsed_offset=float(last.get("elapsed") or 0.0),
                              on_begin=lambda total: report.update(total_steps=total))
    more = steps.extra_callbacks(settings, folder, report.early_stop, args.parent)
    more = [c for c in more if report.writes or not isinstance(c, SnapshotCallback)]
    model = continuation.with_parent_adapter(loaded.model, args.parent) if args.parent else loaded.model
    trainer = steps.build_trainer(model, loaded.tokenizer, settings, folder.checkpoints_dir, train_ds, eval_ds,
                                  [SharedStop(folder, args.app_pid, stop), metrics, *more],
                                  num_processes=settings.train.num_processes)
    metrics.trainer = trainer
    metrics.count_tokens = lambda tokens: int(_all_reduce(float(tokens), trainer.args.device, "sum"))
    try:
        trainer.train(resume_from_checkpoint=str(args.resume) if args.resume else None)
    except StopBeforeFirstStep:
        pass
    if eval_ds is not None and settings.train.eval_steps == 0 and not stop.is_set():
        trainer.evaluate()
    step, total = trainer.state.global_step, trainer.state.max_steps
    if report.writes and step > 0:
        steps.save_adapter(trainer.model, loaded.tokenizer, folder.path)
    report.update(step=step, total_steps=total, stop_reason=report.stop_reason)


def main(argv: list[str] | None = None) -> int:
    """Train this rank's part of the run; 0 when it ended normally (completed or stopped)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    report = Rank0Report(RunFolder(args.run_dir), writes=rank() == 0)

    def log(line: str) -> None:
        if report.writes:
            print(line, flush=True)

    try:
        train(args, report, log)
    except Exception as exc:  # noqa: BLE001 - the app shows one sentence; the traceback goes to launch.log
        import traceback

        traceback.print_exc()
        settings = StudioSettings()
        try:
            settings = RunFolder(args.run_dir).read_settings()
        except Exception:  # noqa: BLE001 - the sentence below does not need them
            pass
        lost = processes.peer_lost(exc)
        message = processes.lost_process_message("another process stopped answering") if lost else None
        report.update(error=message or steps.failure_message(exc, settings))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
