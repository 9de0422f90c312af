"""Run folders on disk: `runs/<run-id>/` with settings, status, metrics and results.

Every write of `run.json` is atomic (temp file + rename) so a SIGKILL never leaves it half written;
`metrics.jsonl` is append-only and a torn last line is skipped on read.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from studio.errors import RunError
from studio.settings import StudioSettings

RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}\Z")  # \Z: "$" would let a trailing newline through
ACTIVE = ("queued", "preparing", "training", "saving", "evaluating")
FINISHED = ("completed", "stopped", "failed", "interrupted")
# Identifies this server process: a run left "active" by another, dead process was interrupted.
PROCESS_TOKEN = uuid.uuid4().hex
_write_lock = threading.Lock()


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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"Run folder {path.parent.name} no longer exists; it may have been deleted.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunError(f"Run {path.parent.name} has an unreadable {path.name}.") from None


def create_run(root: Path, settings: StudioSettings, owner: str = "") -> RunInfo:
    """Make a new run folder holding the settings and a queued status."""
    root.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    path = root / run_id
    path.mkdir()
    _atomic_write(path / "settings.json", json.dumps(settings.to_dict(), indent=2))
    record = {
        "run_id": run_id, "status": "queued", "created": datetime.now().isoformat(timespec="seconds"),
        "owner": owner, "base_model": settings.model.model, "dataset": settings.data.dataset,
        "template": settings.data.template, "pid": os.getpid(), "process": PROCESS_TOKEN,
    }
    _atomic_write(path / "run.json", json.dumps(record, indent=2))
    (path / "metrics.jsonl").touch()  # every run has one, even one stopped before its first step
    return _to_info(path, record)


def update_run(run_dir: Path, **values: Any) -> RunInfo:
    """Merge values into run.json atomically and return the new info."""
    with _write_lock:
        record = _read_json(run_dir / "run.json")
        record.update(values)
        if values.get("status") in ACTIVE:
            record.update(pid=os.getpid(), process=PROCESS_TOKEN)
        _atomic_write(run_dir / "run.json", json.dumps(record, indent=2))
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
    info.has_adapter = (path / "adapter" / "adapter_config.json").is_file()
    if info.status in ACTIVE and record.get("process") != PROCESS_TOKEN and not _pid_alive(int(record.get("pid", -1))):
        info.status = "interrupted"
    return info


def read_run(root: Path, run_id: str) -> RunInfo:
    """Info of one run; RunError if the id is invalid or the folder is gone."""
    path = root / check_run_id(run_id)
    return _to_info(path, _read_json(path / "run.json"))


def read_settings(run_dir: Path) -> StudioSettings:
    """The settings a run was started with."""
    return StudioSettings.from_dict(_read_json(run_dir / "settings.json"))


def list_runs(root: Path) -> list[RunInfo]:
    """All readable runs, newest first; unreadable folders are skipped."""
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir(), reverse=True):
        if RUN_ID.match(path.name) and (path / "run.json").is_file():
            try:
                out.append(_to_info(path, _read_json(path / "run.json")))
            except RunError:
                continue
    return out


def append_metric(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one metrics record as a JSON line, flushed so a crash keeps it."""
    line = (json.dumps(record, allow_nan=False, default=float) + "\n").encode("utf-8")
    with _write_lock, open(run_dir / "metrics.jsonl", "ab+") as fh:
        if fh.seek(0, os.SEEK_END) > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":  # a torn last line (killed mid-write): keep this record off it
                line = b"\n" + line
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Metrics records in order; a torn last line (killed mid-write) is ignored."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
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

