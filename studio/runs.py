"""Run folders on disk: `runs/<run-id>/` with settings, status, metrics, splits, adapter, results and exports.

`RunFolder` is the one owner of a run folder's layout: no other module spells a file or folder name inside it.

    runs/<run-id>/
      settings.json            the settings the run was started with
      run.json                 status, times, base model, dataset, CPU threads, results (rewritten atomically)
      metrics.jsonl            one record per logged step or evaluation (append-only)
      data/{train,test,validation}.jsonl   the splits as trained and compared on
      checkpoints/checkpoint-N/            Trainer checkpoints, for resume
      adapter/                 the PEFT adapter + tokenizer (written whole, then renamed into place)
      adapter-final/           the final adapter, kept here while a chosen snapshot is the run's adapter
      snapshots/step-N/        lightweight adapter-only snapshots spread across the run (train.snapshots)
      timeline.json            every snapshot scored on the held-out (and validation) rows, with its answers
      comparison.json(l)       the before/after summary and its rows
      probe.json               the forgetting probe: base vs tuned accuracy per category, and per item
      judge.json               an LLM judge's pairwise verdicts (both answer orders, raw replies) and its prompt
      report.html, report.md   the stakeholder report
      reproduce/               the reproducibility bundle (its inner layout is owned by studio.publish.reproduce)
      gguf_check.json          GGUF exports checked against the studio's answers, one entry per quantisation
      checkpoints/runs/        TensorBoard event files when train.report_to is tensorboard (the Trainer's default)
      launch.json, launch.log  a several-process run's launch (command, outcome) and its processes' output
      stop                     a Stop asked of a several-process run, seen by every rank after its step
      exports/                 zips, merged model, and other exports (inner layout owned by studio.publish.export)
      exports/gguf-<quant>/    <run-id>-<quant>.gguf + Modelfile + model card, for llama.cpp and Ollama

Every write of a whole file is atomic (temp file + rename) so a SIGKILL never leaves it half written;
`metrics.jsonl` is append-only and a torn last line is skipped on read.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from studio.errors import RunError
from studio.examples import Example
from studio.settings import StudioSettings

RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}\Z")  # \Z: "$" would let a trailing newline through
ACTIVE = ("queued", "preparing", "training", "saving", "evaluating")
FINISHED = ("completed", "stopped", "failed", "interrupted")
SPLITS = ("train", "test", "validation")
# Identifies this server process: a run left "active" by another, dead process was interrupted.
PROCESS_TOKEN = uuid.uuid4().hex
_write_lock = threading.Lock()


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A hidden temp file beside `path` to write; it replaces `path` when the block ends without an error.

    The one temp file + rename of the project: a reader (or a crash) never sees half a file, and a failed write
    leaves the old file and no temp file behind.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, text: str) -> None:
    """Write text via a temp file + rename (`replacing`), so a reader (or a crash) never sees half a file."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def replace_folder(target: Path, write: Callable[[Path], None]) -> Path:
    """Fill a temp sibling folder with `write(tmp)`, then swap it in for `target` (never half written)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def checkpoint_step(checkpoint: Path) -> int:
    """The optimiser step a checkpoint-N folder was saved at."""
    return int(checkpoint.name.split("-")[-1])


def checkpoint_complete(checkpoint: Path) -> bool:
    """True when the Trainer finished writing the checkpoint: trainer_state.json, written last, reads back whole.

    The Trainer writes a checkpoint file by file in place, so a process killed mid-save leaves a partial folder.
    """
    try:
        return isinstance(json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


class RunFolder:
    """One run's folder: every path inside it, and the reads and writes that must be atomic."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def run_id(self) -> str:
        """The folder's name, which is the run id."""
        return self.path.name

    # ---- the layout ---------------------------------------------------------------------------------------
    @property
    def settings_file(self) -> Path:
        """settings.json: the run's settings."""
        return self.path / "settings.json"

    @property
    def run_file(self) -> Path:
        """run.json: status and results."""
        return self.path / "run.json"

    @property
    def metrics_file(self) -> Path:
        """metrics.jsonl: one record per logged step."""
        return self.path / "metrics.jsonl"

    @property
    def data_dir(self) -> Path:
        """data/: the saved splits."""
        return self.path / "data"

    def split_file(self, name: str) -> Path:
        """data/<name>.jsonl for a split name (train, test or validation)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}")
        return self.data_dir / f"{name}.jsonl"

    @property
    def checkpoints_dir(self) -> Path:
        """checkpoints/: the Trainer's output_dir."""
        return self.path / "checkpoints"

    @property
    def adapter_dir(self) -> Path:
        """adapter/: the final PEFT adapter and its tokenizer."""
        return self.path / "adapter"

    @property
    def final_adapter_dir(self) -> Path:
        """adapter-final/: the run's final adapter, set aside while a chosen snapshot is its adapter."""
        return self.path / "adapter-final"

    @property
    def snapshots_dir(self) -> Path:
        """snapshots/: the adapter-only snapshots taken during training."""
        return self.path / "snapshots"

    def snapshot_dir(self, step: int) -> Path:
        """snapshots/step-<step>/: the adapter as it was after optimiser step `step`."""
        return self.snapshots_dir / f"step-{int(step)}"

    @property
    def timeline_file(self) -> Path:
        """timeline.json: the snapshots scored on the held-out rows, step by step."""
        return self.path / "timeline.json"

    @property
    def comparison_file(self) -> Path:
        """comparison.json: the before/after summary."""
        return self.path / "comparison.json"

    @property
    def comparison_rows_file(self) -> Path:
        """comparison.jsonl: one row per held-out example."""
        return self.path / "comparison.jsonl"

    @property
    def probe_file(self) -> Path:
        """probe.json: the forgetting probe's result (studio.evaluate.probe_record)."""
        return self.path / "probe.json"

    @property
    def judge_file(self) -> Path:
        """judge.json: an LLM judge's pairwise verdicts and prompt (studio.evaluate.judge_record)."""
        return self.path / "judge.json"

    @property
    def report_html(self) -> Path:
        """report.html: the self-contained stakeholder report."""
        return self.path / "report.html"

    @property
    def report_md(self) -> Path:
        """report.md: the same report as Markdown."""
        return self.path / "report.md"

    @property
    def reproduce_dir(self) -> Path:
        """reproduce/: the reproducibility bundle."""
        return self.path / "reproduce"

    @property
    def exports_dir(self) -> Path:
        """exports/: zips, merged models and other exports."""
        return self.path / "exports"

    def gguf_dir(self, quant: str) -> Path:
        """exports/gguf-<quant>/: one GGUF export with its Modelfile and model card."""
        return self.exports_dir / f"gguf-{quant}"

    def gguf_file(self, quant: str) -> Path:
        """exports/gguf-<quant>/<run-id>-<quant>.gguf: the merged model for llama.cpp and Ollama."""
        return self.gguf_dir(quant) / f"{self.run_id}-{quant}.gguf"

    def modelfile(self, quant: str) -> Path:
        """exports/gguf-<quant>/Modelfile: Ollama's recipe for the GGUF next to it."""
        return self.gguf_dir(quant) / "Modelfile"

    @property
    def gguf_check_file(self) -> Path:
        """gguf_check.json: each GGUF export's answers compared with the studio's, keyed by quantisation."""
        return self.path / "gguf_check.json"

    @property
    def launch_file(self) -> Path:
        """launch.json: how a several-process run was launched, and what its rank 0 reports (steps, outcome)."""
        return self.path / "launch.json"

    @property
    def launch_log(self) -> Path:
        """launch.log: what the processes of a several-process run printed (the last lines explain a crash)."""
        return self.path / "launch.log"

    @property
    def stop_file(self) -> Path:
        """stop: present while a Stop is asked of a several-process run (every rank checks it after each step)."""
        return self.path / "stop"

    @property
    def tensorboard_dir(self) -> Path:
        """checkpoints/runs/: where the Trainer writes TensorBoard event files (train.report_to tensorboard)."""
        return self.checkpoints_dir / "runs"

    # ---- reads and writes ---------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True while the run's folder and run.json are on disk."""
        return self.run_file.is_file()

    def has_adapter(self) -> bool:
        """True once a complete adapter was saved."""
        return (self.adapter_dir / "adapter_config.json").is_file()

    def read_json(self, path: Path) -> dict[str, Any]:
        """A JSON file of this run, with RunError for a deleted folder or an unreadable file."""
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"Run folder {self.run_id} no longer exists; it may have been deleted.") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RunError(f"Run {self.run_id} has an unreadable {path.name}.") from None

    def write_json(self, path: Path, value: Any) -> None:
        """Write a JSON file of this run atomically."""
        atomic_write(path, json.dumps(value, indent=2))

    def read_settings(self) -> StudioSettings:
        """The settings the run was started with."""
        return StudioSettings.from_dict(self.read_json(self.settings_file))

    def write_splits(self, splits: dict[str, list[Example]]) -> None:
        """Save the splits as JSON lines (an empty validation split is not written)."""
        self.data_dir.mkdir(exist_ok=True)  # no parents: a run folder deleted meanwhile must not be recreated
        for name, examples in splits.items():
            if name == "validation" and not examples:
                continue
            lines = [json.dumps(e.to_row(), ensure_ascii=False) + "\n" for e in examples]
            atomic_write(self.split_file(name), "".join(lines))

    def read_split(self, name: str, required: bool = True) -> list[Example]:
        """The examples of a saved split; RunError when required and missing, else []."""
        path = self.split_file(name)
        if not path.is_file():
            if required:
                raise RunError(f"Run {self.run_id} has no saved {name} split.")
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [Example.from_row(json.loads(line)) for line in lines if line.strip()]

    def append_metric(self, record: dict[str, Any]) -> None:
        """Append one metrics record as a JSON line, flushed so a crash keeps it."""
        line = (json.dumps(record, allow_nan=False, default=float) + "\n").encode("utf-8")
        with _write_lock, open(self.metrics_file, "ab+") as fh:
            if fh.seek(0, os.SEEK_END) > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a torn last line (killed mid-write): keep this record off it
                    line = b"\n" + line
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        """Metrics records in order; a torn last line (killed mid-write) is ignored."""
        if not self.metrics_file.is_file():
            return []
        out = []
        for line in self.metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def checkpoints(self) -> list[Path]:
        """The complete checkpoint-N folders, newest first (half-written ones skipped)."""
        found = [p for p in self.checkpoints_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
        found.sort(key=checkpoint_step, reverse=True)
        return [p for p in found if checkpoint_complete(p)]

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        return next(iter(self.checkpoints()), None)

    def save_adapter(self, save: Callable[[Path], None]) -> Path:
        """Write the adapter through `save(folder)` into a temp folder renamed into place; returns adapter/."""
        return replace_folder(self.adapter_dir, save)

    def save_snapshot(self, step: int, save: Callable[[Path], None]) -> Path:
        """Write one snapshot through `save(folder)` (whole, then renamed into place); returns its folder."""
        self.snapshots_dir.mkdir(exist_ok=True)
        return replace_folder(self.snapshot_dir(step), save)

    def snapshot_steps(self) -> list[int]:
        """The steps of the complete snapshots, in order."""
        if not self.snapshots_dir.is_dir():
            return []
        steps = [int(p.name.split("-")[-1]) for p in self.snapshots_dir.glob("step-*")
                 if p.name.split("-")[-1].isdigit() and (p / "adapter_config.json").is_file()]
        return sorted(steps)


def visitor_secret(root: Path) -> str:
    """The key the UI encrypts each browser's visitor id with, kept in the runs folder so that after a restart a
    browser is still the owner of its runs (and can resume them); created on first use, readable by its owner only."""
    path = root / ".visitor-secret"
    root.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)  # never replaces a secret another process wrote first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text(encoding="utf-8").strip()


def runs_dir() -> Path:
    """The runs folder: $STUDIO_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("STUDIO_RUNS_DIR", "runs")).resolve()


@dataclass
class RunInfo:
    """What run.json says about one run (status already corrected for dead processes)."""

    run_id: str
    path: Path
    status: str = "queued"
    created: str = ""
    owner: str = ""
    base_model: str = ""
    dataset: str = ""
    template: str = ""
    message: str = ""
    error: str = ""
    step: int = 0
    total_steps: int = 0
    final_loss: float | None = None
    train_seconds: float | None = None
    bleu_base: float | None = None
    bleu_tuned: float | None = None
    exact_base: float | None = None
    exact_tuned: float | None = None
    has_adapter: bool = False
    checkpoint: str = ""
    resumed_from: str = ""
    parent_run: str = ""  # "Train more": the run this one continued from
    parent_checkpoint: str = ""  # ... and the checkpoint (adapter + optimizer state) it started from
    parent_step: int = 0  # ... which the parent had reached after this many optimiser steps
    stop_reason: str = ""  # why training ended before its last step (early stopping), in one sentence
    adapter_choice: dict | None = None  # the snapshot chosen as the run's adapter: step, criterion, score
    threads: int = 0  # CPU threads the run trained on (0: not recorded yet)
    thread_policy: str = ""  # "pinned" or "balanced"
    num_processes: int = 1  # training processes (train.num_processes; above 1: under accelerate launch)
    backend: str = ""  # their torch.distributed backend (gloo on CPUs, nccl on GPUs), or the config's launcher
    accelerate_config: str = ""  # the accelerate config file they were launched with, if any

    @property
    def folder(self) -> RunFolder:
        """The run's folder and its layout."""
        return RunFolder(self.path)

    @property
    def finished(self) -> bool:
        """True once the run can no longer change."""
        return self.status in FINISHED


def check_run_id(run_id: str) -> str:
    """Reject anything that is not a generated run id (so user text never becomes a path)."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise RunError(f"{run_id!r} is not a valid run id.")
    return run_id


def new_run_id() -> str:
    """A fresh, sortable, unguessable run id."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def create_run(root: Path, settings: StudioSettings, owner: str = "", **extra: Any) -> RunInfo:
    """Make a new run folder holding the settings and a queued status (`extra` goes into run.json)."""
    root.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(root / new_run_id())
    folder.path.mkdir()
    folder.write_json(folder.settings_file, settings.to_dict())
    record = {
        "run_id": folder.run_id, "status": "queued", "created": datetime.now().isoformat(timespec="seconds"),
        "owner": owner, "base_model": settings.model.model, "dataset": settings.data.dataset,
        "template": settings.data.template, "pid": os.getpid(), "process": PROCESS_TOKEN, **extra,
    }
    folder.write_json(folder.run_file, record)
    folder.metrics_file.touch()  # every run has one, even one stopped before its first step
    return _to_info(folder.path, record)


def update_run(run_dir: Path, **values: Any) -> RunInfo:
    """Merge values into run.json atomically and return the new info."""
    folder = RunFolder(run_dir)
    with _write_lock:
        record = folder.read_json(folder.run_file)
        record.update(values)
        if values.get("status") in ACTIVE:
            record.update(pid=os.getpid(), process=PROCESS_TOKEN)
        folder.write_json(folder.run_file, record)
    return _to_info(run_dir, record)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    return True


def _to_info(path: Path, record: dict[str, Any]) -> RunInfo:
    known = {f.name for f in fields(RunInfo)} - {"path", "run_id", "has_adapter"}
    info = RunInfo(run_id=path.name, path=path, **{k: v for k, v in record.items() if k in known})
    info.has_adapter = RunFolder(path).has_adapter()
    if info.status in ACTIVE and record.get("process") != PROCESS_TOKEN and not _pid_alive(int(record.get("pid", -1))):
        info.status = "interrupted"
    return info


def read_run(root: Path, run_id: str) -> RunInfo:
    """Info of one run; RunError if the id is invalid or the folder is gone."""
    folder = RunFolder(root / check_run_id(run_id))
    return _to_info(folder.path, folder.read_json(folder.run_file))


def list_runs(root: Path) -> list[RunInfo]:
    """All readable runs, newest first; unreadable folders are skipped."""
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir(), reverse=True):
        folder = RunFolder(path)
        if RUN_ID.match(path.name) and folder.exists():
            try:
                out.append(_to_info(path, folder.read_json(folder.run_file)))
            except RunError:
                continue
    return out


def check_owner(info: RunInfo, owner: str, action: str) -> RunInfo:
    """Refuse another session's run ("This run belongs to another session, so it cannot be <action> from here.")."""
    if info.owner and info.owner != owner:
        raise RunError(f"This run belongs to another session, so it cannot be {action} from here.")
    return info


def delete_run(root: Path, run_id: str, owner: str = "") -> None:
    """Delete a finished run; only its owner may (runs without an owner are anyone's)."""
    info = check_owner(read_run(root, run_id), owner, "deleted")
    if info.status in ACTIVE:
        raise RunError("This run is still active; stop it before deleting it.")
    shutil.rmtree(info.path)

