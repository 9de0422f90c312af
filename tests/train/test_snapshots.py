"""Adapter snapshots across a run: where they are taken, that they hold the weights of their step, and choosing one
as the run's adapter with the final adapter kept (studio.train.snapshots)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from studio import runs
from studio.errors import RunError
from studio.runs import RunFolder
from studio.train.snapshots import restore_final_adapter, snapshot_plan, use_snapshot
from tests.builders import trained_job
from tests.tiny import WORDS, write_uppercase_rows


@pytest.mark.parametrize("max_steps, count, plan", [
    (80, 4, [20, 40, 60, 80]), (10, 4, [2, 5, 8, 10]), (3, 4, [1, 2, 3]), (5, 0, []), (0, 4, []), (1, 4, [1]),
])
def test_snapshot_plan_spreads_the_steps_and_ends_at_the_last(max_steps, count, plan):
    assert snapshot_plan(max_steps, count) == plan


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("snapshots")
    return trained_job(tmp / "runs", write_uppercase_rows(tmp / "words.jsonl", WORDS), validation=0.0)


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "adapter_model.safetensors"))


def test_a_run_saves_adapter_only_snapshots_at_the_planned_steps(job):
    folder = RunFolder(job.run_dir)
    assert folder.snapshot_steps() == [2, 4, 6, 8]
    files = sorted(p.name for p in folder.snapshot_dir(2).iterdir())
    assert "adapter_model.safetensors" in files and "adapter_config.json" in files
    assert not any(name.startswith(("optimizer", "tokenizer")) for name in files)  # weights only, no optimizer
    final, last = weights(folder.adapter_dir), weights(folder.snapshot_dir(8))
    assert final.keys() == last.keys() and all(torch.equal(final[k], last[k]) for k in final)
    early = weights(folder.snapshot_dir(2))
    assert any(not torch.equal(early[k], final[k]) for k in final)  # the model changed between step 2 and 8


def test_a_stopped_run_gets_a_snapshot_at_its_last_step(tmp_path):
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.settings import StudioSettings, apply_overrides
    from tests.tiny import tiny_loader

    settings = apply_overrides(StudioSettings(), {
        "data": {"dataset": str(write_uppercase_rows(tmp_path / "w.jsonl", WORDS)), "template": "alpaca",
                 "max_length": 64},
        "train": {"max_steps": 12, "batch_size": 2, "threads": 1}})
    job = TrainingJob(settings, tmp_path / "runs", queue=JobQueue(), model_loader=tiny_loader)
    record = job._record

    def stop_at_5(r):
        record(r)
        if r["step"] >= 5:
            job.stop()

    job._record = stop_at_5
    job.start()
    assert job.join(timeout=60) and job.status == "stopped"
    assert RunFolder(job.run_dir).snapshot_steps() == [3, 5]


def test_use_a_snapshot_keeps_the_final_adapter_and_restore_brings_it_back(job):
    folder = RunFolder(job.run_dir)
    final = weights(folder.adapter_dir)
    adapter = use_snapshot(folder, 4, {"criterion": "validation BLEU", "value": 12.5})
    snap = weights(folder.snapshot_dir(4))
    assert all(torch.equal(weights(adapter)[k], snap[k]) for k in snap)
    assert (adapter / "tokenizer.json").is_file()  # the adapter folder stays loadable on its own
    assert all(torch.equal(weights(folder.final_adapter_dir)[k], final[k]) for k in final)
    info = runs.read_run(job.run_dir.parent, job.run_id)
    assert info.adapter_choice == {"criterion": "validation BLEU", "value": 12.5, "step": 4}
    assert json.loads(folder.run_file.read_text())["adapter_choice"]["step"] == 4
    use_snapshot(folder, 6, {"criterion": "eval loss"})  # a second choice never overwrites the kept final one
    assert all(torch.equal(weights(folder.final_adapter_dir)[k], final[k]) for k in final)

    restore_final_adapter(folder)
    assert all(torch.equal(weights(folder.adapter_dir)[k], final[k]) for k in final)
    assert not folder.final_adapter_dir.exists()
    assert runs.read_run(job.run_dir.parent, job.run_id).adapter_choice is None
    with pytest.raises(RunError, match="already uses its final adapter"):
        restore_final_adapter(folder)
    with pytest.raises(RunError, match="has no snapshot at step 5"):
        use_snapshot(folder, 5, {})
