"""Early stopping on the eval loss: when it stops, why (one sentence in the log, the message and run.json), and that
it refuses settings without eval loss (studio.train.early_stopping)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from studio import runs
from studio.errors import SettingsError
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.runs import RunFolder
from studio.settings import StudioSettings, apply_overrides
from studio.train.early_stopping import EarlyStopping, check_early_stopping, stop_reason
from tests.tiny import WORDS, tiny_loader, write_uppercase_rows


def control():
    return SimpleNamespace(should_training_stop=False, should_save=False)


def evaluate(cb: EarlyStopping, step: int, loss: float, max_steps: int = 100):
    c = control()
    cb.on_evaluate(None, SimpleNamespace(global_step=step, max_steps=max_steps), c, metrics={"eval_loss": loss})
    return c


def test_stops_after_patience_evaluations_without_an_improvement_bigger_than_min_delta():
    reasons: list[str] = []
    cb = EarlyStopping(patience=2, min_delta=0.05, on_stop=reasons.append)
    assert not evaluate(cb, 10, 2.0).should_training_stop
    assert not evaluate(cb, 20, 1.5).should_training_stop  # improved
    assert not evaluate(cb, 30, 1.47).should_training_stop  # not by more than 0.05: 1 without improvement
    c = evaluate(cb, 40, 1.46)  # 2 without improvement: stop, with a checkpoint
    assert c.should_training_stop and c.should_save
    assert reasons == ["Stopped early at step 40: the eval loss did not improve by more than 0.05 for 2 evaluations "
                       "in a row (best 1.5 at step 20)."]


def test_an_improvement_resets_the_count_and_the_last_step_never_stops_early():
    cb = EarlyStopping(patience=1, min_delta=0.0, on_stop=lambda r: None)
    evaluate(cb, 1, 2.0)
    assert not evaluate(cb, 2, 1.0).should_training_stop
    assert not evaluate(cb, 3, 1.2, max_steps=3).should_training_stop  # training ends here anyway
    cb.on_evaluate(None, SimpleNamespace(global_step=4, max_steps=9), control(), metrics={})  # no eval loss: ignored
    assert stop_reason(5, 1, 0.0, 1.0, 2) == ("Stopped early at step 5: the eval loss did not improve for 1 evaluation "
                                              "(best 1 at step 2).")


@pytest.mark.parametrize("overrides", [{"data": {"validation_fraction": 0.0}, "train": {"eval_steps": 2}},
                                       {"data": {"validation_fraction": 0.2}, "train": {"eval_steps": 0}}])
def test_early_stopping_without_eval_loss_is_refused_before_anything_is_written(overrides, runs_dir):
    settings = apply_overrides(StudioSettings(), {**overrides, "train": {**overrides["train"],
                                                                         "early_stopping_patience": 2}})
    with pytest.raises(SettingsError, match="Early stopping watches the eval loss during training"):
        check_early_stopping(settings)
    with pytest.raises(SettingsError):
        TrainingJob(settings, runs_dir, queue=JobQueue(), model_loader=tiny_loader)
    assert list(runs_dir.iterdir()) == []


def test_a_run_that_stops_early_completes_and_says_why(tmp_path):
    settings = apply_overrides(StudioSettings(), {
        "data": {"dataset": str(write_uppercase_rows(tmp_path / "w.jsonl", WORDS)), "template": "alpaca",
                 "max_length": 64, "validation_fraction": 0.2},
        # min_delta larger than any change the tiny model makes: the second evaluation stops the run.
        "train": {"max_steps": 20, "batch_size": 2, "threads": 1, "eval_steps": 2, "early_stopping_patience": 1,
                  "early_stopping_min_delta": 5.0}})
    job = TrainingJob(settings, tmp_path / "runs", queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    assert job.join(timeout=60) and job.status == "completed", job.error
    info = runs.read_run(tmp_path / "runs", job.run_id)
    assert info.step == 4 and info.total_steps == 20 and info.has_adapter
    assert info.stop_reason.startswith("Stopped early at step 4: the eval loss did not improve by more than 5 for 1 "
                                       "evaluation (best ")
    assert job.message.startswith(info.stop_reason) and "Trained 4 steps" in job.message
    assert info.stop_reason in job.logs()
    assert RunFolder(job.run_dir).latest_checkpoint().name == "checkpoint-4"  # Train more can start from it
