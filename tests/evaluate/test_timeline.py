"""The learning timeline record (studio.evaluate.timeline): choosing a snapshot only by validation scores, and the
file round trip."""
from __future__ import annotations

import pytest

from studio.errors import RunError
from studio.evaluate.timeline import (
    NO_VALIDATION,
    best_snapshot,
    choice_note,
    load_timeline,
    save_timeline,
)
from studio.runs import create_run
from studio.settings import StudioSettings
from tests.builders import sample_timeline


def test_the_best_snapshot_is_judged_on_validation_never_on_test():
    t = sample_timeline()
    assert best_snapshot(t, "validation_bleu").step == 60  # the tie at 60.0 goes to the later snapshot
    assert best_snapshot(t, "eval_loss").step == 60
    assert max(t.snapshots, key=lambda p: p.test.bleu).step == 20  # what a test-peeking choice would have picked
    assert choice_note(t) == "Best snapshot by validation BLEU: step 60 (60.0); by eval loss: step 60 (0.9)."
    with pytest.raises(RunError, match="not 'test_bleu'"):
        best_snapshot(t, "test_bleu")


def test_without_a_validation_split_nothing_can_be_chosen():
    t = sample_timeline(validation=False)
    for criterion in ("validation_bleu", "eval_loss"):
        with pytest.raises(RunError) as refused:
            best_snapshot(t, criterion)
        assert str(refused.value) == NO_VALIDATION
    assert choice_note(t) == NO_VALIDATION and "no validation split" in NO_VALIDATION


def test_eval_loss_needs_a_logged_eval_loss_at_a_snapshot_step():
    t = sample_timeline()
    for p in t.points:
        p.eval_loss = None
    with pytest.raises(RunError, match="No scored snapshot has a recorded eval loss"):
        best_snapshot(t, "eval_loss")
    assert choice_note(t) == "Best snapshot by validation BLEU: step 60 (60.0)."


def test_save_and_load_round_trip(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    assert load_timeline(run.path) is None
    t = sample_timeline()
    t.chosen_step, t.partial, t.planned = 40, True, 6
    save_timeline(run.path, t)
    assert load_timeline(run.path) == t
    (run.path / "timeline.json").write_text("{not json")
    with pytest.raises(RunError, match="unreadable timeline"):
        load_timeline(run.path)
