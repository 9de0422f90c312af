"""Stop at any moment: while queued, preparing data, loading the model, before the first step, mid-epoch, during
eval loss, while saving, and during Compare. Each moment is reached deterministically: the step that runs there is
wrapped so it waits on an event while the test presses stop. Afterwards the run folder holds a loadable adapter or
says in run.json that none was trained yet, its metrics.jsonl, and a status that says so.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from studio import jobs, runs
from studio.evaluate.comparison import load_comparison
from studio.evaluate.generation import GenerationStopped
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.pipeline import compare_run, from_job, stopped_note
from studio.publish.scorecard import headline
from studio.runs import RunFolder
from studio.settings import GenerationSettings, StudioSettings, apply_overrides
from studio.train.trainer import FastSFTTrainer
from tests.tiny import WORDS as TINY_WORDS
from tests.tiny import make_tiny_model, write_uppercase_rows

WORDS = TINY_WORDS[:24]
NOTHING_TRAINED = "No steps were trained before the stop, so no adapter was saved."
WAIT = 60  # seconds; generous for a busy 2-core machine, never reached when things work


class Pause:
    """Wraps a function so that its n-th call waits at the start (with `entered` set) until `released`."""

    def __init__(self, real, on_call: int = 1) -> None:
        self.real, self.on_call, self.calls = real, on_call, 0
        self.entered, self.released = threading.Event(), threading.Event()

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.on_call:
            self.entered.set()
            assert self.released.wait(WAIT), "the test never released the paused step"
        return self.real(*args, **kwargs)


def pause_method(monkeypatch, cls, name: str, on_call: int = 1) -> Pause:
    """Pause the n-th call of a method of `cls` (the wrapper is a plain function, so it binds as a method)."""
    pause = Pause(getattr(cls, name), on_call)
    monkeypatch.setattr(cls, name, lambda self, *a, **k: pause(self, *a, **k))
    return pause


def stop_while_paused(job: TrainingJob, pause: Pause) -> None:
    """Start the job, press stop once it reaches the paused moment, let it go on and wait for it to end."""
    job.start()
    try:
        assert pause.entered.wait(WAIT), f"the job never reached the moment ({job.status}: {job.error})"
        job.stop()
    finally:
        pause.released.set()
    assert job.join(timeout=WAIT), "the job did not end after the stop"


@pytest.fixture()
def words_file(tmp_path) -> Path:
    return write_uppercase_rows(tmp_path / "words.jsonl", WORDS)


@pytest.fixture()
def loader(tiny_loader):
    """The tiny model instead of the real one, counting its loads."""
    def load(model_settings, token=None):
        load.calls += 1
        return tiny_loader(model_settings)

    load.calls = 0
    return load


def make_job(words_file: Path, root: Path, loader, data: dict | None = None, **train) -> TrainingJob:
    """About 11 steps per epoch: 22 training rows (2 held out) in batches of 2."""
    settings = apply_overrides(StudioSettings(), {
        "data": {"dataset": str(words_file), "template": "alpaca", "max_length": 64, "test_fraction": 0.08,
                 **(data or {})},
        "train": {"batch_size": 2, "threads": 1, **train},
    })
    return TrainingJob(settings, root, queue=JobQueue(), model_loader=loader)


def assert_nothing_trained(job: TrainingJob, root: Path) -> None:
    """Stopped before any step: run.json says no adapter was trained; metrics.jsonl is there and empty."""
    assert job.status == "stopped", job.error
    info = runs.read_run(root, job.run_id)
    assert (info.status, info.has_adapter, info.step) == ("stopped", False, 0)
    assert info.message == job.message == NOTHING_TRAINED
    assert (job.run_dir / "metrics.jsonl").is_file() and RunFolder(job.run_dir).read_metrics() == []
    assert not (job.run_dir / "adapter").exists()


def assert_adapter_loads(run_dir: Path, tokenizer, model=None) -> None:
    """PeftModel.from_pretrained works on the saved adapter (and matches the job's model when given)."""
    from peft import PeftModel

    tuned = PeftModel.from_pretrained(make_tiny_model(tokenizer), str(run_dir / "adapter"))
    ids = torch.tensor([[2, 10, 11, 12]])
    logits = tuned(input_ids=ids).logits
    assert torch.isfinite(logits).all()
    if model is not None:
        torch.testing.assert_close(logits, model(input_ids=ids).logits)


def assert_stopped_with_adapter(job: TrainingJob, root: Path, tokenizer, step: int) -> runs.RunInfo:
    """Stopped after `step` steps: the adapter so far loads, metrics hold steps 1..step, a checkpoint can resume."""
    assert job.status == "stopped", job.error
    info = runs.read_run(root, job.run_id)
    assert (info.status, info.has_adapter, info.step) == ("stopped", True, step)
    assert step < info.total_steps
    assert info.message == job.message and job.message.startswith(f"Stopped at step {step} of {info.total_steps};")
    assert [r["step"] for r in RunFolder(job.run_dir).read_metrics() if r["loss"] is not None] == list(range(1, step + 1))
    assert RunFolder(job.run_dir).latest_checkpoint().name == f"checkpoint-{step}"
    assert_adapter_loads(job.run_dir, tokenizer, job.model)
    return info


def test_stop_while_queued(words_file, runs_dir, loader):
    queue = JobQueue()
    blocker = type("Blocker", (), {"run_id": "other"})()
    assert queue.wait_turn(blocker, threading.Event())  # another visitor's job holds the slot
    job = make_job(words_file, runs_dir, loader)
    job.queue = queue
    job.start()
    assert not job.join(timeout=0.3) and job.status == "queued"
    job.stop()
    assert job.join(timeout=WAIT)
    queue.release(blocker)
    assert_nothing_trained(job, runs_dir)
    assert loader.calls == 0


def test_stop_during_data_preparation(words_file, runs_dir, loader, monkeypatch):
    pause = Pause(jobs.steps.prepare_data)
    monkeypatch.setattr(jobs.steps, "prepare_data", pause)
    job = make_job(words_file, runs_dir, loader)
    stop_while_paused(job, pause)
    assert_nothing_trained(job, runs_dir)
    assert loader.calls == 0  # the model was never loaded


def test_stop_during_model_load(words_file, runs_dir, loader):
    pause = Pause(loader)
    job = make_job(words_file, runs_dir, pause)
    stop_while_paused(job, pause)
    assert_nothing_trained(job, runs_dir)
    assert (job.run_dir / "data" / "train.jsonl").is_file()  # what was prepared stays
    assert not (job.run_dir / "reproduce").exists()  # nothing after the load ran


def test_stop_before_the_first_step(words_file, runs_dir, loader, monkeypatch):
    pause = Pause(jobs.steps.build_trainer)  # the trainer is about to be built and started
    monkeypatch.setattr(jobs.steps, "build_trainer", pause)
    job = make_job(words_file, runs_dir, loader, max_steps=5)
    stop_while_paused(job, pause)
    assert_nothing_trained(job, runs_dir)
    assert RunFolder(job.run_dir).latest_checkpoint() is None


def test_stop_during_the_first_step(words_file, runs_dir, loader, monkeypatch):
    pause = pause_method(monkeypatch, FastSFTTrainer, "training_step", on_call=1)
    job = make_job(words_file, runs_dir, loader, max_steps=5)
    stop_while_paused(job, pause)
    # The stop came while step 1 was running: step 1 finishes, is saved, and the run ends there.
    assert_stopped_with_adapter(job, runs_dir, job.tokenizer, step=1)


def test_stop_mid_epoch(words_file, runs_dir, loader, monkeypatch, tiny_tokenizer):
    pause = pause_method(monkeypatch, FastSFTTrainer, "training_step", on_call=3)
    job = make_job(words_file, runs_dir, loader, epochs=1.0)
    stop_while_paused(job, pause)
    info = assert_stopped_with_adapter(job, runs_dir, tiny_tokenizer, step=3)
    assert info.total_steps == 11 and job.history()[-1]["epoch"] < 1.0
    assert job.progress()["step"] == 3


def test_stop_during_eval_loss(words_file, runs_dir, loader, monkeypatch, tiny_tokenizer):
    pause = pause_method(monkeypatch, FastSFTTrainer, "evaluate", on_call=1)
    job = make_job(words_file, runs_dir, loader, data={"validation_fraction": 0.2}, max_steps=8, eval_steps=2)
    stop_while_paused(job, pause)
    assert_stopped_with_adapter(job, runs_dir, tiny_tokenizer, step=2)
    assert [r["step"] for r in RunFolder(job.run_dir).read_metrics() if r["eval_loss"] is not None] == [2]


def test_stop_during_the_final_eval_keeps_the_finished_training(words_file, runs_dir, loader, monkeypatch,
                                                                tiny_tokenizer):
    pause = pause_method(monkeypatch, FastSFTTrainer, "evaluate", on_call=1)
    job = make_job(words_file, runs_dir, loader, data={"validation_fraction": 0.2}, max_steps=3)
    stop_while_paused(job, pause)
    # Every step had run: the stop cannot take the finished training away, so the run is complete.
    info = runs.read_run(runs_dir, job.run_id)
    assert (job.status, info.status, info.step, info.has_adapter) == ("completed", "completed", 3, True)
    assert_adapter_loads(job.run_dir, tiny_tokenizer, job.model)


def test_stop_while_saving_the_adapter(words_file, runs_dir, loader, monkeypatch, tiny_tokenizer):
    pause = Pause(jobs.steps.save_adapter)
    monkeypatch.setattr(jobs.steps, "save_adapter", pause)
    job = make_job(words_file, runs_dir, loader, max_steps=2)
    stop_while_paused(job, pause)
    info = runs.read_run(runs_dir, job.run_id)
    assert (job.status, info.status, info.has_adapter) == ("completed", "completed", True)
    assert not (job.run_dir / ".adapter.tmp").exists()
    assert_adapter_loads(job.run_dir, tiny_tokenizer, job.model)


def test_stop_during_compare_keeps_the_examples_both_models_finished(words_file, runs_dir, loader, tiny_tokenizer):
    job = make_job(words_file, runs_dir, loader, max_steps=2, data={"test_fraction": 0.13})
    job.start()
    assert job.join(timeout=WAIT) and job.status == "completed", job.error
    rm = from_job(job)
    assert len(rm.test) == 3
    seen: list[tuple[str, int, int]] = []
    gen = GenerationSettings(max_new_tokens=2, batch_size=1)

    # Stopped while the base model answers the first batch: nothing is finished by both, nothing is saved.
    def stop_at_once(which: str, done: int, total: int) -> None:
        seen.append((which, done, total))

    with pytest.raises(GenerationStopped) as stopped:
        compare_run(rm, gen, progress=stop_at_once, should_stop=lambda: bool(seen))
    assert str(stopped.value) == ("Compare was stopped before both models had answered any of the 3 examples, so "
                                  "nothing was scored or saved.")
    assert seen == [("base", 1, 3)]
    assert not (job.run_dir / "comparison.jsonl").exists() and not (job.run_dir / "report.html").exists()

    # Stopped once both models finished the first two batches: those two examples are scored and saved, partial.
    seen.clear()
    result = compare_run(rm, gen, progress=lambda *a: seen.append(a),
                         should_stop=lambda: len(seen) >= 4)
    assert seen == [("base", 1, 3), ("tuned", 1, 3), ("base", 2, 3), ("tuned", 2, 3)]
    assert (result.partial, len(result.rows), result.planned, result.tuned.n) == (True, 2, 3, 2)
    saved = load_comparison(job.run_dir)
    assert (saved.partial, len(saved.rows), saved.planned) == (True, 2, 3)
    assert stopped_note(result, job.run_dir) == ("Stopped after 2 of 3 examples; scores cover those 2. Saved as the "
                                                 "run's comparison, marked partial.")
    assert headline(saved).startswith("Stopped after 2 of 3 examples; scores cover those 2. ")
    assert (job.run_dir / "report.html").is_file()
    # Training's results are untouched: still completed, the adapter loads.
    info = runs.read_run(runs_dir, job.run_id)
    assert (info.status, info.has_adapter) == ("completed", True)
    assert [r["step"] for r in RunFolder(job.run_dir).read_metrics()] == [1, 2]
    assert_adapter_loads(job.run_dir, tiny_tokenizer, job.model)

    # Compare runs again to the end; a later stopped comparison then leaves the complete one saved.
    full = compare_run(rm, gen)
    assert not full.partial and len(full.rows) == 3 and not load_comparison(job.run_dir).partial
    again = compare_run(rm, gen, should_stop=lambda: len(seen) >= 6, progress=lambda *a: seen.append(a))
    assert again.partial and len(again.rows) == 1
    assert not load_comparison(job.run_dir).partial
    assert stopped_note(again, job.run_dir).endswith("It was not saved: the run's earlier complete comparison stays.")


def test_stop_twice_and_after_the_end_changes_nothing(words_file, runs_dir, loader):
    job = make_job(words_file, runs_dir, loader, max_steps=1)
    job.start()
    assert job.join(timeout=WAIT) and job.status == "completed"
    job.stop()
    job.stop()
    assert job.status == "completed" and runs.read_run(runs_dir, job.run_id).status == "completed"
