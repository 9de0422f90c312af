"""The demo job on the tiny model: train -> compare -> report as one TrainingJob, stoppable at every stage."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from studio.demo import best_rows, demo_job, example_lines
from studio.errors import RunError
from studio.evaluate.comparison import load_comparison
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.model.loading import LoadedModel
from studio.runs import ACTIVE, RunFolder, read_run
from studio.settings import StudioSettings, apply_overrides
from studio.stages import StageStopped
from tests.tiny import WORDS, make_tiny_model, make_tiny_tokenizer, tiny_loader


@pytest.fixture()
def data_file(tmp_path) -> Path:
    """24 uppercase rows as JSON lines."""
    path = tmp_path / "words.jsonl"
    rows = [{"instruction": "Uppercase the word.", "input": w, "output": w.upper()} for w in WORDS]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _settings(data_file: Path, steps: int = 3, batch: int = 4) -> StudioSettings:
    return apply_overrides(StudioSettings(), {
        "data": {"dataset": str(data_file), "template": "alpaca", "test_fraction": 0.25, "max_length": 64,
                 "max_test_examples": 4},
        "train": {"max_steps": steps, "batch_size": 4, "threads": 1},
        "generation": {"max_new_tokens": 4, "batch_size": batch},
    })


def slow_answers_loader(delay: float):
    """A tiny-model loader whose every forward pass outside training sleeps `delay` s (a slow comparison)."""
    def loader(settings, token=None):
        tokenizer = make_tiny_tokenizer()
        model = make_tiny_model(tokenizer)
        model.get_input_embeddings().register_forward_pre_hook(
            lambda module, args: None if module.training else time.sleep(delay))
        return LoadedModel(model, tokenizer, "tiny", "local", 0.0, False)
    return loader


def _demo(data_file, runs_dir, loader=tiny_loader, **kwargs) -> TrainingJob:
    return demo_job(_settings(data_file, **kwargs), runs_dir, owner="me", queue=JobQueue(), model_loader=loader)


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_demo_trains_compares_and_writes_the_report(data_file, runs_dir):
    demo = _demo(data_file, runs_dir)
    assert demo.stage == "data" and demo.status == "queued"
    stages = set()
    demo.start()
    while not demo.join(timeout=0.02):
        stages.add((demo.stage, demo.status))
    assert demo.status == "completed" and demo.stage == "results" and demo.error == ""
    assert ("compare", "evaluating") in stages or ("train", "training") in stages
    cmp = demo.comparison
    assert cmp is not None and cmp.tuned.n == 4 and load_comparison(demo.run_dir) is not None
    assert RunFolder(demo.run_dir).report_html.is_file()
    assert read_run(runs_dir, demo.run_id).bleu_tuned is not None
    assert "Compared on 4 held-out examples: BLEU" in demo.message and demo.logs()[-1] == demo.message
    # The last pass Compare reports: the prompt-only baseline's when it ran (it fits the model's context), else tuned.
    last = f"baseline ({cmp.baseline.shots}-shot)" if cmp.baseline is not None and cmp.baseline.ran else "tuned"
    assert demo.progress()["step"] == 3 and demo.progress()["answering"]["which"] == last
    gains = [r.delta_bleu for r in best_rows(cmp)]
    assert gains == sorted(gains, reverse=True) and len(gains) == 3
    lines = example_lines(cmp)
    assert lines[0].startswith("  1. Uppercase the word. Input: ") and lines[3].startswith("     expected: '")


def test_status_never_reads_completed_between_training_and_comparing(data_file, runs_dir):
    demo = _demo(data_file, runs_dir, loader=slow_answers_loader(0.05))
    demo.start()
    seen = []
    while not demo.join(timeout=0.01):
        seen.append(demo.status)
    finished_at = seen.index("evaluating") if "evaluating" in seen else len(seen)
    assert "completed" not in seen[:finished_at + 1] and all(s in ACTIVE for s in seen[:-1])
    assert demo.status == "completed"


def test_stop_while_training_keeps_the_adapter_and_skips_the_comparison(data_file, runs_dir):
    demo = _demo(data_file, runs_dir, steps=200)
    demo.start()
    _wait_for(lambda: demo.progress()["step"] >= 1)
    demo.stop(owner="me")
    assert demo.join(timeout=60)
    assert demo.status == "stopped" and demo.stage == "train" and demo.comparison is None
    assert "The comparison was skipped." in demo.message and RunFolder(demo.run_dir).has_adapter()
    assert load_comparison(demo.run_dir) is None


def test_stop_while_comparing_keeps_the_adapter_and_says_what_was_kept(data_file, runs_dir):
    demo = _demo(data_file, runs_dir, loader=slow_answers_loader(0.1), batch=1)
    demo.start()
    _wait_for(lambda: demo.progress()["answering"]["done"] >= 1)
    assert demo.stage == "compare" and demo.status == "evaluating"
    demo.stop()
    assert demo.join(timeout=60)
    assert demo.status == "stopped" and demo.stage == "results" and demo.comparison.partial
    kept = len(demo.comparison.rows)
    assert 1 <= kept < demo.comparison.n_planned and RunFolder(demo.run_dir).has_adapter()
    assert f"Stopped after {kept} of {demo.comparison.n_planned} examples" in demo.message


def test_only_the_owner_may_stop_it_and_a_failed_training_fails_the_demo(data_file, runs_dir, tmp_path):
    demo = _demo(data_file, runs_dir, steps=200)
    demo.start()
    with pytest.raises(RunError, match="another session"):
        demo.stop(owner="someone-else")
    demo.stop(owner="me")
    demo.join(timeout=60)

    missing = apply_overrides(_settings(data_file), {"data": {"dataset": str(tmp_path / "gone.jsonl")}})
    failed = demo_job(missing, runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    failed.start()
    failed.join(timeout=60)
    assert failed.status == "failed" and failed.stage == "data" and "gone.jsonl" in failed.error


def test_a_queued_demo_shows_its_place_in_line(data_file, runs_dir):
    queue = JobQueue()
    first = TrainingJob(_settings(data_file, steps=200), runs_dir, queue=queue, model_loader=tiny_loader)
    first.start()
    demo = demo_job(_settings(data_file), runs_dir, queue=queue, model_loader=tiny_loader)
    demo.start()
    _wait_for(lambda: demo.queue.position(demo) == 1)
    assert demo.status == "queued" and demo.stage == "data"
    demo.stop()
    first.stop()
    assert demo.join(timeout=60) and demo.status == "stopped"
    first.join(timeout=60)


class HeldStage:
    """An after-training stage that waits until the test lets it go, then says one sentence (or stops)."""

    name, skipped = "compare", "The comparison was skipped."

    def __init__(self, stop_with: str = "") -> None:
        self.entered, self.released, self.stop_with = threading.Event(), threading.Event(), stop_with

    def run(self, job, progress, should_stop) -> str:
        self.entered.set()
        assert self.released.wait(60)
        progress("tuned", 2, 2)
        if self.stop_with:
            raise StageStopped(self.stop_with)
        return "Compared."


def test_a_demo_stays_active_until_its_last_stage_has_said_how_it_ended(data_file, runs_dir):
    stage = HeldStage()
    job = TrainingJob(_settings(data_file), runs_dir, queue=JobQueue(), model_loader=tiny_loader, after=(stage,),
                      kind="demo")
    job.start()
    assert stage.entered.wait(60)
    # Training has completed and run.json says so, but the job is not done: watchers poll again.
    assert (job.status, job.stage) == ("evaluating", "compare") and job.status in ACTIVE
    assert read_run(runs_dir, job.run_id).status == "completed" and job.queue.running() is None
    trained = job.message
    stage.released.set()
    assert job.join(timeout=60)
    assert (job.status, job.stage, job.message) == ("completed", "results", f"{trained} Compared.")
    assert job.progress()["answering"] == {"which": "tuned", "done": 2, "total": 2}


def test_a_stage_that_stops_or_fails_ends_the_job_but_not_the_run(data_file, runs_dir):
    stage = HeldStage(stop_with="Stopped before comparing.")
    stage.released.set()
    job = TrainingJob(_settings(data_file), runs_dir, queue=JobQueue(), model_loader=tiny_loader, after=(stage,))
    job.start()
    assert job.join(timeout=60)
    assert (job.status, job.stage) == ("stopped", "compare") and job.message.endswith(" Stopped before comparing.")
    assert read_run(runs_dir, job.run_id).status == "completed"  # the adapter it trained is whole

    class Broken(HeldStage):
        def run(self, job, progress, should_stop) -> str:
            raise ValueError("boom")

    job = TrainingJob(_settings(data_file), runs_dir, queue=JobQueue(), model_loader=tiny_loader, after=(Broken(),))
    job.start()
    assert job.join(timeout=60)
    assert job.status == "failed" and job.error.startswith("Something unexpected went wrong after training")
    assert job.logs()[-1] == f"Failed: {job.error}" and read_run(runs_dir, job.run_id).status == "completed"
