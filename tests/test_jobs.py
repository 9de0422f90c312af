"""TrainingJob end to end on the tiny model: train, stop, fail, queue, resume."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from studio import jobs, runs
from studio.errors import RunError
from studio.jobqueue import JobQueue, queue_position
from studio.jobs import TrainingJob
from studio.model.loading import LoadedModel
from studio.runs import RunFolder
from studio.settings import StudioSettings, apply_overrides
from tests.tiny import WORDS as TINY_WORDS
from tests.tiny import tiny_loader

WORDS = TINY_WORDS[:16]


@pytest.fixture()
def data_file(tmp_path) -> Path:
    """24 distinct word-task rows as JSON lines."""
    path = tmp_path / "words.jsonl"
    rows = [{"instruction": "Uppercase the words.", "input": f"{a} {b}", "output": f"{a} {b}".upper()}
            for a, b in zip(WORDS, WORDS[3:] + WORDS[:3])]
    rows += [{"instruction": "Reverse the letters.", "input": w, "output": w[::-1]} for w in WORDS[:8]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _settings(data_file: Path, **train) -> StudioSettings:
    values = {"max_steps": 3, "batch_size": 4, "threads": 1, **train}
    return apply_overrides(StudioSettings(), {
        "data": {"dataset": str(data_file), "template": "alpaca", "test_fraction": 0.2, "max_length": 64},
        "train": values,
    })


def _stop_at(job: TrainingJob, step: int) -> None:
    """Ask the job to stop as soon as it has logged `step`."""
    record = job._record

    def wrapped(r):
        record(r)
        if r["step"] >= step:
            job.stop()

    job._record = wrapped


def test_job_trains_logs_from_step_one_and_saves_a_loadable_adapter(data_file, runs_dir, tiny_tokenizer):
    from peft import PeftModel

    job = TrainingJob(_settings(data_file), runs_dir, owner="me", queue=JobQueue(), model_loader=tiny_loader)
    assert job.status == "queued"
    job.start()
    assert job.join(timeout=60)
    assert job.status == "completed", job.error
    history = job.history()
    assert [r["step"] for r in history] == [1, 2, 3]
    assert all(r["loss"] is not None and r["tokens_per_second"] for r in history)
    assert [r["step"] for r in RunFolder(job.run_dir).read_metrics()] == [1, 2, 3]
    info = runs.read_run(runs_dir, job.run_id)
    assert (info.status, info.step, info.total_steps, info.has_adapter) == ("completed", 3, 3, True)
    assert info.final_loss == history[-1]["loss"] and info.train_seconds > 0
    assert (job.run_dir / "data" / "train.jsonl").is_file() and (job.run_dir / "data" / "test.jsonl").is_file()
    assert "adapter" in job.message and job.progress()["fraction"] == 1.0
    assert any(line.startswith("Loaded ") and "train" in line for line in job.logs())
    assert job.model is not None and job.template is not None and job.splits.test
    tuned = PeftModel.from_pretrained(tiny_loader().model, str(job.run_dir / "adapter"))
    ids = torch.tensor([[2, 10, 11, 12]])
    torch.testing.assert_close(tuned(input_ids=ids).logits, job.model(input_ids=ids).logits)


@pytest.mark.parametrize("train", [
    {"gradient_checkpointing": True}, {"fast_loss": False}, {"group_by_length": False, "grad_accum": 2},
    {"optimizer": "adafactor", "lr_scheduler": "cosine", "warmup_steps": 1}, {"completion_only_loss": False},
])
def test_other_training_switches_train_too(data_file, runs_dir, train):
    job = TrainingJob(_settings(data_file, max_steps=2, **train), runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    job.join(timeout=60)
    assert job.status == "completed", job.error
    assert [r["step"] for r in job.history()] == [1, 2] and all(r["loss"] for r in job.history())


@pytest.mark.parametrize(("eval_steps", "eval_at"), [(0, [3]), (2, [2, 3])])
def test_validation_split_gives_eval_loss(data_file, runs_dir, eval_steps, eval_at):
    settings = apply_overrides(_settings(data_file, eval_steps=eval_steps), {"data": {"validation_fraction": 0.2}})
    job = TrainingJob(settings, runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    job.join(timeout=60)
    assert job.status == "completed", job.error
    assert [r["step"] for r in job.history() if r["eval_loss"] is not None] == eval_at
    assert (job.run_dir / "data" / "validation.jsonl").is_file()


def test_stop_mid_run_saves_the_adapter_so_far(data_file, runs_dir):
    job = TrainingJob(_settings(data_file, max_steps=6), runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    _stop_at(job, 2)
    job.start()
    job.join(timeout=60)
    assert job.status == "stopped", job.error
    assert job.message.startswith("Stopped at step 2 of 6;") and "adapter" in job.message
    info = runs.read_run(runs_dir, job.run_id)
    assert info.status == "stopped" and info.has_adapter and info.step == 2
    assert (job.run_dir / "checkpoints" / "checkpoint-2").is_dir()  # so the run can be resumed


def test_stop_before_training_saves_nothing_and_says_so(data_file, runs_dir, monkeypatch):
    job = TrainingJob(_settings(data_file), runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    prepare = jobs.steps.prepare_data

    def prepare_then_stop(settings, token=None):
        job.stop()
        return prepare(settings, token)

    monkeypatch.setattr(jobs.steps, "prepare_data", prepare_then_stop)
    job.start()
    job.join(timeout=60)
    assert job.status == "stopped"
    assert job.message == "No steps were trained before the stop, so no adapter was saved."
    assert not runs.read_run(runs_dir, job.run_id).has_adapter


def test_a_failing_data_source_fails_with_one_sentence(tmp_path, runs_dir):
    job = TrainingJob(_settings(tmp_path / "missing.jsonl"), runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    job.join(timeout=60)
    assert job.status == "failed"
    assert job.error and "\n" not in job.error and job.error.endswith(".")
    info = runs.read_run(runs_dir, job.run_id)
    assert info.status == "failed" and info.error == job.error


def test_out_of_memory_becomes_advice(data_file, runs_dir, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99999999 bytes")

    monkeypatch.setattr(jobs.steps, "tokenize_splits", explode)
    job = TrainingJob(_settings(data_file), runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    job.join(timeout=60)
    assert job.status == "failed"
    assert job.error.startswith("Training ran out of memory; lower train.batch_size from")


def test_a_run_that_cannot_fit_is_refused_after_loading_and_warnings_are_logged(data_file, runs_dir, monkeypatch):
    from studio.model import resources

    monkeypatch.setattr(resources, "check_resources", lambda *a, **k: ["Disk space is getting low."])
    job = TrainingJob(_settings(data_file), runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    assert job.join(timeout=60) and job.status == "completed"
    assert "Disk space is getting low." in job.logs()

    monkeypatch.setattr(resources, "blocking_problem", lambda *a, **k: "This run needs more memory than is free.")
    job = TrainingJob(_settings(data_file), runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    assert job.join(timeout=60) and job.status == "failed" and job.stage == "model"
    assert job.error == "This run needs more memory than is free." and not job.history()


def test_second_job_waits_in_the_queue_and_can_leave_it(data_file, runs_dir):
    queue = JobQueue()
    blocker = type("Blocker", (), {"run_id": "x"})()
    assert queue.wait_turn(blocker, threading.Event())  # someone else is training
    second = TrainingJob(_settings(data_file), runs_dir, queue=queue, model_loader=tiny_loader)
    third = TrainingJob(_settings(data_file), runs_dir, queue=queue, model_loader=tiny_loader)
    second.start()
    third.start()
    assert not second.join(timeout=0.5)
    assert (second.status, queue_position(second), queue_position(third)) == ("queued", 1, 2)
    third.stop()
    assert third.join(timeout=5) and third.status == "stopped" and queue_position(third) == 0
    queue.release(blocker)
    assert second.join(timeout=60) and second.status == "completed"
    assert queue_position(second) == 0 and queue.running() is None


def test_only_the_owner_may_stop_a_job(data_file, runs_dir):
    queue = JobQueue()
    job = TrainingJob(_settings(data_file), runs_dir, owner="alice", queue=queue, model_loader=tiny_loader)
    with pytest.raises(RunError, match="another session"):
        job.stop(owner="bob")
    queue.enqueue(job)
    with pytest.raises(RunError):
        queue.stop(job.run_id, owner="bob")
    queue.stop(job.run_id, owner="alice")
    assert job.status == "stopped" and queue.jobs() == []
    with pytest.raises(RunError):
        job.start()


def test_resume_continues_from_the_last_checkpoint(data_file, runs_dir):
    first = TrainingJob(_settings(data_file, max_steps=4), runs_dir, owner="me", queue=JobQueue(),
                        model_loader=tiny_loader)
    _stop_at(first, 2)
    first.start()
    first.join(timeout=60)
    assert first.status == "stopped"
    # Checkpoints skip the tokenizer (resume takes the base model's); the adapter folder keeps its own.
    checkpoint = RunFolder(first.run_dir).latest_checkpoint()
    assert (checkpoint / "adapter_model.safetensors").is_file() and not (checkpoint / "tokenizer.json").exists()
    with pytest.raises(RunError, match="another session"):
        TrainingJob(StudioSettings(), runs_dir, owner="someone-else", resume_run=first.run_id)

    resumed = TrainingJob(StudioSettings(), runs_dir, owner="me", resume_run=first.run_id, queue=JobQueue(),
                          model_loader=tiny_loader)
    assert resumed.run_dir == first.run_dir and resumed.settings.train.max_steps == 4
    resumed.start()
    resumed.join(timeout=60)
    assert resumed.status == "completed", resumed.error
    assert [r["step"] for r in RunFolder(first.run_dir).read_metrics()] == [1, 2, 3, 4]
    assert [r["step"] for r in resumed.history()] == [1, 2, 3, 4]
    assert (RunFolder(first.run_dir).adapter_dir / "tokenizer.json").is_file()
    info = runs.read_run(runs_dir, first.run_id)
    assert (info.step, info.resumed_from) == (4, "checkpoint-2")


def test_an_injected_model_loader_is_used(data_file, runs_dir, tiny_tokenizer):
    calls = []

    def loader(model_settings, token=None):
        calls.append((model_settings.model, token))
        return LoadedModel(tiny_loader().model, tiny_tokenizer, "injected", "local", 0.5, False)

    job = TrainingJob(_settings(data_file, max_steps=1), runs_dir, token="hf_x", queue=JobQueue(), model_loader=loader)
    job.start()
    job.join(timeout=60)
    assert job.status == "completed" and calls == [("embedded:gemma-3-270m", "hf_x")]
    assert any("injected" in line for line in job.logs())
    assert "hf_x" not in (job.run_dir / "run.json").read_text() + (job.run_dir / "settings.json").read_text()


def test_a_completed_run_cannot_be_resumed(data_file, runs_dir):
    job = TrainingJob(_settings(data_file, max_steps=1), runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    job.join(timeout=60)
    with pytest.raises(RunError, match="completed"):
        TrainingJob(StudioSettings(), runs_dir, resume_run=job.run_id)
