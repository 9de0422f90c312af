"""Crash and resume, and failures inside the training thread.

Crash: a real subprocess (tests/crash_worker.py) trains the tiny model with a checkpoint after every step; the
test SIGKILLs it mid-run, finds the run "interrupted" with its metrics intact, resumes it here and checks that it
completes with one record per step and a loadable adapter.
Failures: an exception inside the job's thread ends the run "failed" with one sentence; the process carries on.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from studio import jobs, runs
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.model.loading import LoadedModel
from studio.runs import RunFolder
from studio.settings import StudioSettings, apply_overrides
from studio.train.trainer import FastSFTTrainer
from tests.crash_worker import TOTAL_STEPS
from tests.tiny import WORDS as TINY_WORDS
from tests.tiny import make_tiny_model, tiny_loader

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "tests" / "crash_worker.py"
WORDS = TINY_WORDS[:20]
WAIT = 60


def write_words(path: Path) -> Path:
    rows = [{"instruction": "Uppercase the word.", "input": w, "output": w.upper()} for w in WORDS]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def assert_one_sentence(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message and message.endswith("."), message


def logged_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in RunFolder(run_dir).read_metrics() if r.get("loss") is not None]


def wait_for_progress(proc: subprocess.Popen, root: Path, log: Path) -> Path:
    """The worker's run folder once it has logged 3 steps and written a complete checkpoint."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the worker ended early:\n{log.read_text()[-3000:]}"
        found = [p for p in root.glob("*") if runs.RUN_ID.match(p.name)] if root.is_dir() else []
        if found and len(logged_steps(found[0])) >= 3 and RunFolder(found[0]).latest_checkpoint():
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"the worker made no progress in {WAIT} s:\n{log.read_text()[-3000:]}")


def kill_worker_mid_run(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Start a training worker, SIGKILL it once it has logged a few steps; (runs root, run folder, data file)."""
    root, data_file, log = tmp_path / "runs", write_words(tmp_path / "words.jsonl"), tmp_path / "worker.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(WORKER), str(root), str(data_file), "0.5"], cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        run_dir = wait_for_progress(proc, root, log)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=WAIT)  # reap it: a zombie still answers os.kill(pid, 0)
    assert proc.returncode == -signal.SIGKILL
    return root, run_dir, data_file


@pytest.fixture(scope="module")
def killed_once(tmp_path_factory) -> Path:
    """One worker killed mid-run for the module (starting a worker costs a Python start and a torch import)."""
    return kill_worker_mid_run(tmp_path_factory.mktemp("killed"))[0].parent


@pytest.fixture()
def killed(killed_once, tmp_path) -> tuple[Path, Path, Path]:
    """A copy of the killed worker's folder for one test (which resumes it): (runs root, run folder, data file)."""
    shutil.copytree(killed_once, tmp_path, dirs_exist_ok=True)
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if runs.RUN_ID.match(p.name)]
    return tmp_path / "runs", run_dir, tmp_path / "words.jsonl"


def test_sigkill_mid_run_then_resume(killed):
    root, run_dir, data_file = killed

    # The run is found interrupted, with every step up to the last logged one.
    [info] = runs.list_runs(root)
    assert (info.run_id, info.status) == (run_dir.name, "interrupted")
    steps = logged_steps(run_dir)
    assert len(steps) >= 3 and steps == list(range(1, steps[-1] + 1)), steps
    # A kill during a write leaves half a line; simulate it (one short write is rarely torn by a real kill).
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write(f'{{"step": {steps[-1] + 1}, "epoch": 0.9, "lo')
    assert logged_steps(run_dir) == steps
    checkpoint = RunFolder(run_dir).latest_checkpoint()
    assert steps[-1] - 1 <= int(checkpoint.name.split("-")[1]) <= steps[-1]  # logged first, then checkpointed

    # Resume in this process with the run's own settings: it completes, numbering continues without duplicates.
    resumed = TrainingJob(StudioSettings(), root, resume_run=info.run_id, queue=JobQueue(), model_loader=tiny_loader)
    assert resumed.settings.train.max_steps == TOTAL_STEPS and resumed.settings.train.save_steps == 1
    resumed.start()
    assert resumed.join(timeout=WAIT) and resumed.status == "completed", resumed.error
    assert logged_steps(run_dir) == list(range(1, TOTAL_STEPS + 1))
    assert [r["step"] for r in resumed.history() if r["loss"] is not None] == list(range(1, TOTAL_STEPS + 1))
    final = runs.read_run(root, info.run_id)
    assert (final.status, final.step, final.has_adapter, final.resumed_from) == (
        "completed", TOTAL_STEPS, True, checkpoint.name)
    assert (final.threads, final.thread_policy) == (1, "pinned")  # the resumed half kept the run's thread count
    assert resumed.progress()["fraction"] == 1.0

    from peft import PeftModel

    base = tiny_loader(None)
    tuned = PeftModel.from_pretrained(base.model, str(run_dir / "adapter"))
    ids = torch.tensor([[2, 10, 11, 12]])
    torch.testing.assert_close(tuned(input_ids=ids).logits, resumed.model(input_ids=ids).logits)


def test_after_a_kill_the_app_lists_the_run_interrupted_and_resume_completes_it(killed):
    """The issue's scenario end to end: a training process SIGKILLed mid-run, the studio started again on the same
    runs folder lists the run as interrupted, and its Resume endpoint brings it to completed with the same steps."""
    from gradio_client import Client

    from tests.browser_utils import launch_studio

    root, run_dir, data_file = killed
    killed_at = logged_steps(run_dir)[-1]
    assert 3 <= killed_at < TOTAL_STEPS

    demo, url = launch_studio(root)  # "restart": a new server process state on the same runs folder
    try:
        client = Client(url, verbose=False)
        table, _ = client.predict(api_name="/list_runs")
        assert [row[:2] for row in table["data"]] == [[run_dir.name, "interrupted"]]
        view = client.predict(run_id=run_dir.name, api_name="/resume_run")
        assert view[-2]["run_id"] == run_dir.name  # the Train tab's view of the resumed job
        deadline = time.monotonic() + WAIT
        while (details := client.predict(api_name="/progress")[5])["status"] not in runs.FINISHED:
            assert time.monotonic() < deadline, details
            time.sleep(0.3)
    finally:
        demo.close()
    assert (details["status"], details["step"], details["total_steps"]) == ("completed", TOTAL_STEPS, TOTAL_STEPS)
    info = runs.read_run(root, run_dir.name)
    assert (info.status, info.step, info.total_steps, info.has_adapter) == ("completed", TOTAL_STEPS, TOTAL_STEPS, True)
    assert logged_steps(run_dir) == list(range(1, TOTAL_STEPS + 1))  # the loss chart continued, nothing twice
    assert len(runs.list_runs(root)) == 1


def test_a_record_appended_after_a_torn_line_stays_readable(runs_dir):
    info = runs.create_run(runs_dir, StudioSettings())
    RunFolder(info.path).append_metric({"step": 1, "loss": 2.0})
    with open(info.path / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"step": 2, "lo')  # killed mid-write
    RunFolder(info.path).append_metric({"step": 2, "loss": 1.5})  # the resumed run logs step 2 again
    assert RunFolder(info.path).read_metrics() == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]


def test_resume_skips_a_half_written_checkpoint(tmp_path, tiny_tokenizer):
    """A kill during a checkpoint save leaves a partial folder; resume picks the newest complete one."""
    root = tmp_path / "runs"
    settings = apply_overrides(StudioSettings(), {
        "data": {"dataset": str(write_words(tmp_path / "words.jsonl")), "template": "alpaca", "max_length": 64},
        "train": {"max_steps": 4, "batch_size": 2, "threads": 1, "save_steps": 1},
    })

    def loader(model_settings, token=None):
        return LoadedModel(make_tiny_model(tiny_tokenizer), tiny_tokenizer, "tiny", "local", 0.0, False)

    job = TrainingJob(settings, root, queue=JobQueue(), model_loader=loader)
    record = job._record

    def stop_at_2(r):
        record(r)
        if r["step"] >= 2:
            job.stop()

    job._record = stop_at_2
    job.start()
    assert job.join(timeout=WAIT) and job.status == "stopped"
    partial = job.run_dir / "checkpoints" / "checkpoint-3"
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    (partial / "trainer_state.json").write_text('{"global_step": 3, "log_hist')  # torn mid-write
    assert RunFolder(job.run_dir).latest_checkpoint().name == "checkpoint-2"  # the torn checkpoint-3 is skipped

    resumed = TrainingJob(StudioSettings(), root, resume_run=job.run_id, queue=JobQueue(), model_loader=loader)
    resumed.start()
    assert resumed.join(timeout=WAIT) and resumed.status == "completed", resumed.error
    assert logged_steps(job.run_dir) == [1, 2, 3, 4]
    assert runs.read_run(root, job.run_id).resumed_from == "checkpoint-2"


# ---- failures inside the training thread -----------------------------------------------------------------------

@pytest.fixture()
def words_settings(tmp_path) -> StudioSettings:
    return apply_overrides(StudioSettings(), {
        "data": {"dataset": str(write_words(tmp_path / "words.jsonl")), "template": "alpaca", "max_length": 64},
        "train": {"max_steps": 4, "batch_size": 2, "threads": 1, "save_steps": 1},
    })


@pytest.fixture()
def loader(tiny_loader):
    return tiny_loader


@pytest.fixture()
def thread_errors(monkeypatch) -> list:
    """Exceptions that escape any thread (a job's thread must never let one out)."""
    import threading

    caught: list = []
    monkeypatch.setattr(threading, "excepthook", caught.append)
    return caught


def raise_on_call(n: int, exc: BaseException):
    """A training_step replacement that raises `exc` on its n-th call and trains normally otherwise."""
    real, calls = FastSFTTrainer.training_step, []

    def step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise exc
        return real(self, *args, **kwargs)

    return step


@pytest.mark.parametrize("exc, expected", [
    (RuntimeError("boom in the kernel\n  at line 3 of something.cpp"), "Training failed with RuntimeError: boom in the kernel."),
    (MemoryError(), "Training ran out of memory; lower train.batch_size from 2"),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"),
     "Training ran out of memory"),
    (ValueError(""), "Training failed with ValueError."),
], ids=["runtime-error", "memory-error", "cpu-allocator", "empty-message"])
def test_an_exception_in_a_step_fails_the_run_with_one_sentence(words_settings, runs_dir, loader, monkeypatch,
                                                                thread_errors, exc, expected):
    monkeypatch.setattr(FastSFTTrainer, "training_step", raise_on_call(3, exc))
    queue = JobQueue()
    job = TrainingJob(words_settings, runs_dir, queue=queue, model_loader=loader)
    job.start()
    assert job.join(timeout=WAIT)
    assert job.status == "failed" and job.error.startswith(expected), job.error
    assert_one_sentence(job.error)
    info = runs.read_run(runs_dir, job.run_id)
    assert (info.status, info.error) == ("failed", job.error)
    assert logged_steps(job.run_dir) == [1, 2]  # what was trained before the failure is kept
    assert not thread_errors and queue.running() is None
    # The process carries on: the next job on the same queue trains to the end.
    monkeypatch.undo()
    following = TrainingJob(words_settings, runs_dir, queue=queue, model_loader=loader)
    following.start()
    assert following.join(timeout=WAIT) and following.status == "completed", following.error


@pytest.mark.parametrize("where", ["model_loader", "save_adapter", "append_metric", "write_repro_bundle"])
def test_a_failure_at_each_stage_fails_with_one_sentence(words_settings, runs_dir, loader, monkeypatch,
                                                         thread_errors, where):
    def explode(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if where == "save_adapter":
        monkeypatch.setattr(jobs.steps, "save_adapter", explode)
    elif where == "append_metric":
        monkeypatch.setattr(RunFolder, "append_metric", explode)
    elif where == "write_repro_bundle":
        monkeypatch.setattr(jobs, "write_repro_bundle", explode)
    job = TrainingJob(words_settings, runs_dir, queue=JobQueue(), model_loader=explode if where == "model_loader"
                      else loader)
    job.start()
    assert job.join(timeout=WAIT) and job.status == "failed"
    assert job.error == "Training failed with OSError: [Errno 28] No space left on device."
    assert runs.read_run(runs_dir, job.run_id).status == "failed" and not thread_errors


def test_a_failed_run_resumes_from_its_last_checkpoint(words_settings, runs_dir, loader, monkeypatch):
    monkeypatch.setattr(FastSFTTrainer, "training_step", raise_on_call(3, RuntimeError("flaky")))
    job = TrainingJob(words_settings, runs_dir, queue=JobQueue(), model_loader=loader)
    job.start()
    assert job.join(timeout=WAIT) and job.status == "failed"
    monkeypatch.undo()
    resumed = TrainingJob(StudioSettings(), runs_dir, resume_run=job.run_id, queue=JobQueue(), model_loader=loader)
    resumed.start()
    assert resumed.join(timeout=WAIT) and resumed.status == "completed", resumed.error
    assert logged_steps(job.run_dir) == [1, 2, 3, 4]
    info = runs.read_run(runs_dir, job.run_id)
    assert (info.status, info.error, info.resumed_from) == ("completed", "", "checkpoint-2")
