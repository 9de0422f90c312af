"""Run folders: creation, atomic status updates, metrics, interrupted detection, ownership."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio import runs
from studio.errors import RunError
from studio.runs import RunFolder
from studio.settings import StudioSettings


def test_create_and_read(runs_dir):
    info = runs.create_run(runs_dir, StudioSettings(), owner="abc")
    assert runs.RUN_ID.match(info.run_id)
    again = runs.read_run(runs_dir, info.run_id)
    assert again.status == "queued" and again.owner == "abc" and again.base_model == StudioSettings().model.model
    assert RunFolder(info.path).read_settings() == StudioSettings()


def test_update_and_list(runs_dir):
    a = runs.create_run(runs_dir, StudioSettings())
    runs.update_run(a.path, status="completed", final_loss=0.5)
    listed = runs.list_runs(runs_dir)
    assert [r.run_id for r in listed] == [a.run_id]
    assert listed[0].status == "completed" and listed[0].final_loss == 0.5 and listed[0].finished


def test_metrics_survive_a_torn_line(runs_dir):
    info = runs.create_run(runs_dir, StudioSettings())
    RunFolder(info.path).append_metric({"step": 1, "loss": 2.0})
    RunFolder(info.path).append_metric({"step": 2, "loss": 1.5})
    with open(info.path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 3, "lo')
    assert [m["step"] for m in RunFolder(info.path).read_metrics()] == [1, 2]


def test_active_run_of_a_dead_process_is_interrupted(runs_dir):
    info = runs.create_run(runs_dir, StudioSettings())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = json.loads((info.path / "run.json").read_text())
    record.update(status="training", pid=int(dead.stdout), process="another-process")
    (info.path / "run.json").write_text(json.dumps(record))
    assert runs.read_run(runs_dir, info.run_id).status == "interrupted"


def test_active_run_of_this_process_stays_active(runs_dir):
    info = runs.create_run(runs_dir, StudioSettings())
    runs.update_run(info.path, status="training")
    assert runs.read_run(runs_dir, info.run_id).status == "training"


@pytest.mark.parametrize("bad", ["../etc", "..", "20250101-000000-abcdef/../x", "", "x" * 300, "/tmp"])
def test_path_traversal_is_rejected(runs_dir, bad):
    with pytest.raises(RunError, match="not a valid run id"):
        runs.read_run(runs_dir, bad)


def test_delete_respects_owner_and_activity(runs_dir):
    info = runs.create_run(runs_dir, StudioSettings(), owner="alice")
    runs.update_run(info.path, status="completed")
    with pytest.raises(RunError, match="another session"):
        runs.delete_run(runs_dir, info.run_id, owner="bob")
    runs.delete_run(runs_dir, info.run_id, owner="alice")
    assert not info.path.exists()
    with pytest.raises(RunError, match="no longer exists"):
        runs.read_run(runs_dir, info.run_id)


def test_active_run_cannot_be_deleted(runs_dir):
    info = runs.create_run(runs_dir, StudioSettings())
    runs.update_run(info.path, status="training")
    with pytest.raises(RunError, match="still active"):
        runs.delete_run(runs_dir, info.run_id)


def test_runs_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert runs.runs_dir() == (tmp_path / "elsewhere").resolve()
    assert os.fspath(runs.runs_dir()).endswith("elsewhere")


def test_latest_checkpoint_is_the_highest_step(tmp_path: Path):
    folder = RunFolder(tmp_path)
    assert folder.latest_checkpoint() is None
    for n in (2, 10, 4):
        (tmp_path / "checkpoints" / f"checkpoint-{n}").mkdir(parents=True)
        (tmp_path / "checkpoints" / f"checkpoint-{n}" / "trainer_state.json").write_text('{"global_step": %d}' % n)
    assert folder.latest_checkpoint().name == "checkpoint-10"


def test_the_visitor_secret_is_created_once_and_kept(tmp_path):
    import stat

    from studio.runs import list_runs, visitor_secret

    root = tmp_path / "runs"
    first = visitor_secret(root)
    assert len(first) >= 40 and visitor_secret(root) == first  # the same after a restart
    assert stat.S_IMODE((root / ".visitor-secret").stat().st_mode) == 0o600
    assert list_runs(root) == [] and [p.name for p in root.iterdir()] == [".visitor-secret"]


def test_replacing_swaps_the_file_in_whole_or_leaves_the_old_one(tmp_path):
    target = tmp_path / "export.zip"
    runs.atomic_write(target, "old")
    with pytest.raises(OSError), runs.replacing(target) as tmp:
        tmp.write_text("half a new fi", encoding="utf-8")
        raise OSError("disk full")
    assert target.read_text(encoding="utf-8") == "old" and list(tmp_path.iterdir()) == [target]
    with runs.replacing(target) as tmp:
        tmp.write_text("new", encoding="utf-8")
        assert tmp.parent == target.parent and tmp.name.startswith(".")  # hidden beside it: the same disk
    assert target.read_text(encoding="utf-8") == "new" and list(tmp_path.iterdir()) == [target]
