"""After the first run, on the real embedded Gemma 3 270M (slow, kept short: tests/conftest.py's `first_real_run`,
4 held-out prompts): snapshots are taken, the chat streams the very answers Compare scores, the timeline's last point
is the tuned model, and Train more continues from the run's adapter and optimizer state."""
from __future__ import annotations

import pytest

from studio import pipeline, runs
from studio.evaluate.before_after import compare
from studio.evaluate.chat import ask_both, converse
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.runs import RunFolder
from studio.train.continuation import continue_settings

pytestmark = pytest.mark.slow
MORE_STEPS = 2  # Train more: enough to see it start from the parent's state


@pytest.fixture(scope="module")
def job(first_real_run):
    return first_real_run  # tests/conftest.py: 8 steps, snapshots at 4 and 8


@pytest.fixture(scope="module")
def reference(job):
    """What Compare answers on the run's 4 held-out prompts: the chat and the timeline must give the same."""
    rm = pipeline.from_job(job)
    return compare(rm.model, rm.tokenizer, rm.template, rm.test[:4], rm.settings.generation)


def test_chat_streams_what_compare_scores(job, reference):
    rm = pipeline.from_job(job)
    rows = rm.test[:2]
    gen = rm.settings.generation
    for example, row in zip(rows, reference.rows[:2], strict=True):
        updates: dict[str, list] = {"base": [], "tuned": []}
        for who, reply in ask_both(rm.model, rm.tokenizer, rm.template, example.instruction, example.input, gen):
            updates[who].append(reply)
        assert updates["base"][-1].text == row.base and updates["tuned"][-1].text == row.tuned
        assert len(updates["base"]) > 2  # streamed token by token
    turns = {"base": [], "tuned": []}
    replies = {who: reply for who, reply in converse(rm.model, rm.tokenizer, rm.template, turns,
                                                      "Uppercase the word: river", gen)}
    assert replies["base"].done and replies["tuned"].done and replies["tuned"].ending


def test_the_timeline_ends_at_the_tuned_model_and_train_more_continues(job, reference):
    folder = RunFolder(job.run_dir)
    assert folder.snapshot_steps() == [4, 8]
    rm = pipeline.from_job(job)
    timeline = pipeline.score_snapshots_run(rm)
    assert [p.step for p in timeline.points] == [0, 4, 8] and timeline.n_validation > 0
    assert timeline.points[0].answers == [r.base for r in reference.rows]
    assert timeline.points[-1].answers == [r.tuned for r in reference.rows]
    print("\nheld-out BLEU by step:", [(p.step, round(p.test.bleu, 1)) for p in timeline.points])

    more = TrainingJob(continue_settings(job.settings, {"train": {"max_steps": MORE_STEPS}}), job.root,
                       queue=JobQueue(), continue_run=job.run_id)
    more.start()
    assert more.join(timeout=900) and more.status == "completed", more.error
    info = runs.read_run(job.root, more.run_id)
    assert (info.parent_run, info.parent_step, info.step) == (job.run_id, 8, MORE_STEPS)
    first = next(r["loss"] for r in more.history() if r.get("loss") is not None)
    parent_first = next(r["loss"] for r in job.history() if r.get("loss") is not None)
    assert first < parent_first  # it starts where the parent got to, not from the base model
