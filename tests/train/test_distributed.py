"""A run on several processes (`train.num_processes` > 1): the job's thread launches `studio.train.worker` under
`accelerate launch` (gloo, one thread a process) and follows it through the run folder.

Why two processes equal one process with the whole batch (`test_two_processes_train_as_one_with_the_global_batch`):
every rank draws the same batches of batch_size x 2 rows from one seeded sampler and takes its half (split_batches),
the loss of each half is divided by the answer tokens of the whole batch and scaled by 2, and the gradients are
averaged over the ranks: their mean is the gradient of one process's loss over the whole batch, step by step.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio import runs
from studio.errors import SettingsError
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.runs import RunFolder
from studio.settings import StudioSettings, apply_overrides
from studio.train.launch import check_machine
from tests.launch_helpers import launch_settings, ranks, slow_tiny_loader, wait_for
from tests.tiny import tiny_loader

REPO = Path(__file__).resolve().parents[2]


def assert_one_sentence(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message and message.endswith("."), message


def loss_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in RunFolder(run_dir).read_metrics() if r.get("loss") is not None]


def train(settings: StudioSettings, root: Path, loader=tiny_loader, **kwargs) -> TrainingJob:
    job = TrainingJob(settings, root, queue=JobQueue(), model_loader=loader, **kwargs)
    job.start()
    assert job.join(timeout=240), "the run did not end in time"
    return job


def test_two_processes_train_as_one_with_the_global_batch(tmp_path):
    from studio.pipeline import compare_run, from_job
    from studio.settings import GenerationSettings

    two = train(launch_settings(tmp_path, processes=2, batch_size=2), tmp_path / "runs")
    one = train(launch_settings(tmp_path, processes=1, batch_size=4), tmp_path / "runs")
    assert two.status == "completed" and one.status == "completed", (two.error, one.error)
    losses = {job: [r["loss"] for r in job.history() if r.get("loss") is not None] for job in (one, two)}
    assert len(losses[two]) == len(losses[one]) == 4
    for a, b in zip(losses[one], losses[two]):
        assert b == pytest.approx(a, rel=1e-4)  # the same steps, up to the order of float sums
    assert losses[two][-1] == pytest.approx(losses[one][-1], rel=0.01)
    # The job's watchers see what an in-app run shows; run.json says how it was launched.
    assert two.progress()["step"] == 4 and two.progress()["total_steps"] == 4
    assert any("Training on 2 processes (gloo)" in line for line in two.logs())
    info = runs.read_run(tmp_path / "runs", two.run_id)
    assert (info.num_processes, info.backend, info.threads, info.final_loss) == (2, "gloo", 1, losses[two][-1])
    folder = RunFolder(two.run_dir)
    assert folder.has_adapter() and (folder.adapter_dir / "adapter_model.safetensors").is_file()
    assert folder.latest_checkpoint() is not None and folder.snapshot_steps()
    assert "--num_processes" in (folder.reproduce_dir / "launch.sh").read_text()
    comparison = compare_run(from_job(two), GenerationSettings(max_new_tokens=4, batch_size=4), limit=2)
    assert len(comparison.rows) == 2 and folder.comparison_file.is_file()


def test_stop_ends_every_rank_after_its_step_and_keeps_the_adapter(tmp_path):
    job = TrainingJob(launch_settings(tmp_path, max_steps=60, save_steps=0, snapshots=0), tmp_path / "runs",
                      queue=JobQueue(), model_loader=slow_tiny_loader)
    job.start()
    wait_for(lambda: any(r.get("loss") is not None for r in job.history()))
    job.stop()
    assert job.join(timeout=120)
    assert job.status == "stopped", job.error
    step = job.progress()["step"]
    assert 0 < step < 60 and f"Stopped at step" in job.message
    assert RunFolder(job.run_dir).has_adapter() and RunFolder(job.run_dir).latest_checkpoint() is not None
    wait_for(lambda: not ranks(), timeout=30)


def test_a_killed_rank_fails_the_run_in_one_sentence_and_resume_completes(tmp_path):
    root = tmp_path / "runs"
    job = TrainingJob(launch_settings(tmp_path, max_steps=8, save_steps=1, snapshots=0), root, queue=JobQueue(),
                      model_loader=slow_tiny_loader)
    job.start()
    wait_for(lambda: len(loss_steps(job.run_dir)) >= 2 and RunFolder(job.run_dir).latest_checkpoint() is not None)
    ranks()[1].send_signal(signal.SIGKILL)
    assert job.join(timeout=120)
    assert job.status == "failed" and "A training process ended unexpectedly" in job.error
    assert_one_sentence(job.error)
    assert runs.read_run(root, job.run_id).status == "failed" and RunFolder(job.run_dir).latest_checkpoint()
    wait_for(lambda: not ranks(), timeout=60)

    resumed = train(None, root, loader=slow_tiny_loader, resume_run=job.run_id)
    assert resumed.status == "completed", resumed.error
    assert sorted(set(loss_steps(job.run_dir))) == list(range(1, 9))
    assert runs.read_run(root, job.run_id).num_processes == 2 and RunFolder(job.run_dir).has_adapter()


def test_killing_the_app_leaves_the_run_interrupted_and_resume_relaunches(tmp_path):
    root, log = tmp_path / "runs", tmp_path / "app.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        app = subprocess.Popen([sys.executable, str(REPO / "tests" / "launch_crash_worker.py"), str(root),
                                str(tmp_path)], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        def progressed() -> bool:
            assert app.poll() is None, log.read_text()[-3000:]
            found = [p for p in root.glob("*") if runs.RUN_ID.match(p.name)] if root.is_dir() else []
            return bool(found) and len(loss_steps(found[0])) >= 2 and RunFolder(found[0]).latest_checkpoint()
        wait_for(progressed)
        run_dir = next(p for p in root.glob("*") if runs.RUN_ID.match(p.name))
        app.send_signal(signal.SIGKILL)
    finally:
        app.kill()
        app.wait(timeout=60)
    assert runs.read_run(root, run_dir.name).status == "interrupted"
    # The orphaned ranks notice the app is gone and end after their step, with a checkpoint.
    group = json.loads(RunFolder(run_dir).launch_file.read_text())["group"]
    wait_for(lambda: not _group_alive(group), timeout=90)

    resumed = train(None, root, loader=slow_tiny_loader, resume_run=run_dir.name)
    assert resumed.status == "completed", resumed.error
    assert sorted(set(loss_steps(run_dir))) == list(range(1, 13))


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_count_the_machine_lacks_or_a_missing_config_is_one_sentence_when_the_run_starts(tmp_path):
    too_many = (os.cpu_count() or 1) + 1
    # The settings load on any machine (a run folder copied from a bigger one must open); starting is what checks.
    counted = apply_overrides(StudioSettings(), {"train": {"num_processes": too_many}})
    with pytest.raises(SettingsError) as exc:
        check_machine(counted.train)
    assert_one_sentence(str(exc.value)) and f"{too_many}" in str(exc.value)
    missing = apply_overrides(StudioSettings(), {"train": {"accelerate_config": str(tmp_path / "nope.yaml")}})
    with pytest.raises(SettingsError) as exc:
        check_machine(missing.train)
    assert_one_sentence(str(exc.value))
    # A job started anyway fails in that sentence: the run marked failed, its data kept, how it asked to launch said.
    job = train(launch_settings(tmp_path, processes=too_many), tmp_path / "runs")
    assert job.status == "failed" and f"train.num_processes is {too_many}, but this machine has" in job.error
    assert_one_sentence(job.error)
    info = runs.read_run(tmp_path / "runs", job.run_id)
    assert (info.status, info.error, info.num_processes) == ("failed", job.error, too_many)
    assert RunFolder(job.run_dir).split_file("train").is_file()


def test_a_run_folder_from_a_bigger_machine_opens_and_resuming_it_is_one_sentence(tmp_path, capsys):
    from studio import cli

    root = tmp_path / "runs"
    info = runs.create_run(root, apply_overrides(StudioSettings(), {"train": {"num_processes": 64}}))
    runs.update_run(info.path, status="interrupted", num_processes=64, backend="nccl")
    assert RunFolder(info.path).read_settings().train.num_processes == 64
    assert [r.num_processes for r in runs.list_runs(root)] == [64]
    code = cli.main(["train", "--runs-dir", str(root), "--resume", info.run_id], model_loader=tiny_loader)
    said = capsys.readouterr()
    assert code != 0 and "train.num_processes is 64, but this machine has" in said.out + said.err
    assert runs.read_run(root, info.run_id).status == "interrupted"  # nothing started, nothing changed


def test_a_broken_config_file_fails_the_run_in_one_sentence_and_nothing_else(tmp_path):
    config = tmp_path / "accelerate.yaml"
    config.write_text("distributed_type: NOT_A_TYPE\nnum_processes: 2\n")
    job = train(launch_settings(tmp_path, accelerate_config=str(config)), tmp_path / "runs")
    assert job.status == "failed"
    assert_one_sentence(job.error)
    assert RunFolder(job.run_dir).split_file("train").is_file()  # the run keeps its data; nothing else was touched


def test_a_loader_only_the_app_knows_is_refused_in_one_sentence(tmp_path):
    job = train(launch_settings(tmp_path), tmp_path / "runs", loader=lambda settings, token=None: tiny_loader())
    assert job.status == "failed" and "train.num_processes to 1" in job.error
    assert_one_sentence(job.error)


def test_the_command_line_trains_on_two_processes(tmp_path, capsys):
    from studio import cli

    code = cli.main(["train", "--runs-dir", str(tmp_path / "runs"), "--no-compare", "--set", "train.max_steps=2",
                     "--set", "train.batch_size=2", "--set", "train.threads=1", "--set", "train.num_processes=2"],
                    model_loader=tiny_loader)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Training on 2 processes (gloo)" in out and "step 2/2" in out


@pytest.mark.slow
def test_the_embedded_model_trains_on_two_processes(tmp_path):
    settings = apply_overrides(StudioSettings(), {"data": {"max_test_examples": 2},
                                                  "train": {"max_steps": 3, "threads": 1, "num_processes": 2,
                                                            "snapshots": 0, "save_steps": 0}})
    job = TrainingJob(settings, tmp_path / "runs", queue=JobQueue())
    job.start()
    assert job.join(timeout=300) and job.status == "completed", job.error
    assert [r["step"] for r in job.history() if r.get("loss") is not None] == [1, 2, 3]
    assert RunFolder(job.run_dir).has_adapter() and job.model is not None
