"""Scoring every snapshot of a run (studio.evaluate.snapshot_scores): the base point is Compare's base, the last
snapshot's point is Compare's tuned, the run's adapter is untouched, and a stop keeps the points finished."""
from __future__ import annotations

import threading

import pytest

from studio.evaluate.before_after import compare
from studio.evaluate.snapshot_scores import SNAPSHOT, NothingScored, answering_as, score_snapshots
from studio.runs import RunFolder
from studio.settings import GenerationSettings
from tests.builders import trained_job
from tests.tiny import WORDS, write_uppercase_rows

GEN = GenerationSettings(max_new_tokens=5, batch_size=2)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeline")
    return trained_job(tmp / "runs", write_uppercase_rows(tmp / "words.jsonl", WORDS), validation=0.2,
                       learning_rate=0.05)


def test_every_snapshot_scored_in_step_order_on_test_and_validation(job):
    folder = RunFolder(job.run_dir)
    test, validation = job.splits.test[:4], list(job.splits.validation)
    seen = []
    timeline = score_snapshots(job.model, job.tokenizer, job.template, folder, test, validation, GEN,
                               folder.read_metrics(), progress=lambda d, n, s: seen.append((d, n, s)))
    assert [p.step for p in timeline.points] == [0, 2, 4, 6, 8]
    assert seen == [(0, 5, 0), (1, 5, 2), (2, 5, 4), (3, 5, 6), (4, 5, 8), (5, 5, 8)]
    assert (timeline.n_validation, timeline.final_step, timeline.partial) == (len(validation), 8, False)
    assert all(p.validation is not None and p.test.n == 4 for p in timeline.points)
    assert [p.eval_loss is not None for p in timeline.points] == [False, True, True, True, True]  # eval every 2 steps
    reference = compare(job.model, job.tokenizer, job.template, test, GEN)
    assert timeline.points[0].answers == [r.base for r in reference.rows]  # step 0 is the base model
    assert timeline.points[-1].answers == [r.tuned for r in reference.rows]  # the last snapshot is the final adapter
    assert timeline.examples[0]["reference"] == test[0].output


def test_the_runs_adapter_is_untouched_while_a_snapshot_answers(job):
    import torch

    folder, ids = RunFolder(job.run_dir), torch.tensor([[2, 10, 11, 12]])
    with torch.no_grad():
        own = job.model(input_ids=ids).logits
        with answering_as(job.model, folder, 2):
            assert job.model.active_adapter == SNAPSHOT
            early = job.model(input_ids=ids).logits
        assert job.model.active_adapter == "default" and SNAPSHOT not in job.model.peft_config
        torch.testing.assert_close(job.model(input_ids=ids).logits, own)
    assert not torch.allclose(early, own)  # the step-2 snapshot really is another model


def test_a_stop_keeps_the_points_already_scored(job):
    folder = RunFolder(job.run_dir)
    stop = threading.Event()

    def progress(done: int, total: int, step: int) -> None:
        if done == 2:
            stop.set()

    timeline = score_snapshots(job.model, job.tokenizer, job.template, folder, job.splits.test[:4], [], GEN,
                               folder.read_metrics(), progress=progress, should_stop=stop.is_set)
    assert [p.step for p in timeline.points] == [0, 2] and timeline.partial and timeline.planned == 5
    with pytest.raises(NothingScored, match="Stopped before any of the 5 timeline points was scored"):
        score_snapshots(job.model, job.tokenizer, job.template, folder, job.splits.test[:4], [], GEN, [],
                        should_stop=lambda: True)
