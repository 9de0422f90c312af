"""Train more: a new run from a completed run's adapter and optimizer state, on its saved splits, recording its
parent (studio.train.continuation + TrainingJob(continue_run=...))."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from studio import runs
from studio.errors import RunError, SettingsError
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.runs import RunFolder
from studio.settings import StudioSettings
from studio.train.continuation import LoadOptimizerState, continue_settings, open_for_continue
from tests.builders import trained_job
from tests.tiny import WORDS, tiny_loader, write_uppercase_rows


def test_continue_settings_change_only_training_and_generation():
    parent = StudioSettings.from_dict({"train": {"max_steps": 40, "epochs": 3.0}})
    more = continue_settings(parent, {"train": {"epochs": "1"}})
    assert (more.train.epochs, more.train.max_steps) == (1.0, 0)  # N more epochs: the parent's max_steps goes
    assert continue_settings(parent, {"train": {"max_steps": 5}}).train.max_steps == 5
    assert continue_settings(parent, {}) == parent
    with pytest.raises(SettingsError, match="so lora.\\* settings cannot change; only train.\\* and generation"):
        continue_settings(parent, {"lora": {"r": 4}})
    with pytest.raises(SettingsError, match="train.optimizer cannot change"):
        continue_settings(parent, {"train": {"optimizer": "sgd"}})


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parent")
    return trained_job(tmp / "runs", write_uppercase_rows(tmp / "words.jsonl", WORDS), validation=0.0)


def test_only_a_completed_run_with_its_optimizer_state_can_be_trained_more(parent, tmp_path):
    info, checkpoint = open_for_continue(parent.root, parent.run_id, "")
    assert info.run_id == parent.run_id and checkpoint.name == "checkpoint-8"
    with pytest.raises(RunError, match="belongs to another session, so it cannot be trained more from here"):
        runs.update_run(parent.run_dir, owner="alice")
        open_for_continue(parent.root, parent.run_id, "bob")
    runs.update_run(parent.run_dir, owner="")
    stopped = runs.create_run(tmp_path, StudioSettings())
    runs.update_run(stopped.path, status="stopped")
    with pytest.raises(RunError, match="is stopped; Train more starts from a completed run"):
        open_for_continue(tmp_path, stopped.run_id, "")
    runs.update_run(stopped.path, status="completed")
    with pytest.raises(RunError, match="kept no checkpoint with its optimizer state"):
        open_for_continue(tmp_path, stopped.run_id, "")


def test_train_more_starts_from_the_parents_adapter_and_optimizer_state(parent):
    seen: dict = {}
    real = LoadOptimizerState.on_train_begin

    def spy(self, args, state, control, optimizer=None, model=None, **kwargs):
        seen["lora"] = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        real(self, args, state, control, optimizer=optimizer, model=model, **kwargs)
        seen["moments"] = [s["exp_avg"].clone() for s in optimizer.state_dict()["state"].values()]

    LoadOptimizerState.on_train_begin = spy
    try:
        settings = continue_settings(parent.settings, {"train": {"max_steps": 3}})
        job = TrainingJob(settings, parent.root, queue=JobQueue(), model_loader=tiny_loader,
                          continue_run=parent.run_id)
        job.start()
        assert job.join(timeout=60) and job.status == "completed", job.error
    finally:
        LoadOptimizerState.on_train_begin = real
    assert job.run_id != parent.run_id
    info = runs.read_run(parent.root, job.run_id)
    assert (info.parent_run, info.parent_checkpoint, info.parent_step, info.step) == (parent.run_id, "checkpoint-8", 8, 3)
    # The adapter it started from is the parent's final one, weight for weight (peft names drop ".default").
    final = load_file(str(RunFolder(parent.run_dir).adapter_dir / "adapter_model.safetensors"))
    started = {k.replace(".default", ""): v for k, v in seen["lora"].items()}
    assert final.keys() == started.keys() and all(torch.equal(started[k], final[k]) for k in final)
    # Adam's moments are the parent's, not zeros.
    saved = torch.load(RunFolder(parent.run_dir).checkpoints_dir / "checkpoint-8" / "optimizer.pt", weights_only=True)
    assert [torch.equal(a, s["exp_avg"]) for a, s in zip(seen["moments"], saved["state"].values())] == \
        [True] * len(saved["state"])
    # Same rows as the parent (read from its folder, not the data source again), its own schedule from step 1.
    folder, parent_folder = RunFolder(job.run_dir), RunFolder(parent.run_dir)
    assert folder.read_split("train") == parent_folder.read_split("train")
    assert folder.read_split("test") == parent_folder.read_split("test")
    assert [r["step"] for r in folder.read_metrics() if r["loss"] is not None] == [1, 2, 3]
    assert job.history()[0]["learning_rate"] == pytest.approx(settings.train.learning_rate)
