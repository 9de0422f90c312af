"""After training: reopen a run through the injected loader, compare it, write results and the report."""
from __future__ import annotations

import json

import pytest

from studio import pipeline
from studio.errors import RunError
from studio.evaluate.comparison import load_comparison
from studio.runs import RunFolder, create_run, read_run
from studio.settings import GenerationSettings, StudioSettings
from tests.builders import TEST, make_finished_run


@pytest.fixture()
def finished(runs_dir, tiny_tokenizer):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    return run_dir


def test_open_run_loads_the_base_through_the_injected_loader_with_the_adapter(finished, runs_dir, tiny_loader):
    calls = []

    def loader(model_settings, token=None):
        calls.append((model_settings.model, token))
        return tiny_loader(model_settings)

    rm = pipeline.open_run(runs_dir, finished.name, token="hf_x", model_loader=loader)
    assert calls == [(StudioSettings().model.model, "hf_x")]
    assert rm.run_id == finished.name and rm.test == TEST and hasattr(rm.model, "disable_adapter")
    assert rm.template.name == rm.settings.data.template
    assert rm.base_label.startswith("Base: Gemma 3 270M") and finished.name in rm.tuned_label


def test_compare_run_saves_the_comparison_and_the_report(finished, runs_dir, tiny_loader):
    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    result = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=3), limit=1)
    assert result.base.n == 1 and load_comparison(finished) == result
    folder = RunFolder(finished)
    assert folder.report_html.is_file() and folder.report_md.is_file()
    assert json.loads(folder.comparison_file.read_text())["tuned"]["n"] == 1
    assert read_run(runs_dir, finished.name).bleu_tuned == result.tuned.bleu


def test_a_run_without_an_adapter_or_test_rows_is_refused(runs_dir, tiny_loader, tiny_tokenizer):
    bare = create_run(runs_dir, StudioSettings())
    with pytest.raises(RunError, match="no saved adapter"):
        pipeline.open_run(runs_dir, bare.run_id, model_loader=tiny_loader)
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    rm = pipeline.open_run(runs_dir, run_dir.name, model_loader=tiny_loader)
    rm.test = []
    with pytest.raises(RunError, match="no held-out examples"):
        pipeline.compare_run(rm)


def test_from_job_needs_a_trained_model(runs_dir):
    info = create_run(runs_dir, StudioSettings())
    job = type("Job", (), {"model": None, "run_dir": info.path})()
    with pytest.raises(RunError, match="no trained adapter"):
        pipeline.from_job(job)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A tiny run trained with a validation split and 4 snapshots."""
    from tests.builders import trained_job
    from tests.tiny import WORDS, write_uppercase_rows

    tmp = tmp_path_factory.mktemp("learned")
    return trained_job(tmp / "runs", write_uppercase_rows(tmp / "words.jsonl", WORDS), validation=0.2)


def test_score_snapshots_run_saves_the_timeline_and_keeps_a_complete_one_over_a_stopped_one(learned):
    from studio.evaluate.timeline import load_timeline

    rm = pipeline.from_job(learned)
    timeline = pipeline.score_snapshots_run(rm)
    assert [p.step for p in timeline.points] == [0, 2, 4, 6, 8] and load_timeline(learned.run_dir) == timeline
    # Compare's rows: data.max_test_examples caps the test rows, and the validation rows the same way.
    assert len(timeline.examples) == 4 and timeline.n_validation == min(4, len(learned.splits.validation))
    done: list[int] = []
    stopped = pipeline.score_snapshots_run(rm, progress=lambda d, n, s: done.append(d),
                                           should_stop=lambda: bool(done) and done[-1] >= 2)
    assert stopped.partial and not load_timeline(learned.run_dir).partial  # the complete timeline stays


def test_choose_the_best_snapshot_then_compare_and_restore(learned, tiny_loader):
    from studio.evaluate.timeline import best_snapshot, load_timeline

    root = learned.root
    pipeline.score_snapshots_run(pipeline.from_job(learned))
    expected = best_snapshot(load_timeline(learned.run_dir), "eval_loss")
    with pytest.raises(RunError, match="belongs to another session, so it cannot be changed from here"):
        runs_update(learned.run_dir, owner="alice")
        pipeline.choose_snapshot(root, learned.run_id, "bob", "eval_loss")
    runs_update(learned.run_dir, owner="")
    point = pipeline.choose_snapshot(root, learned.run_id, "", "eval_loss")
    assert point.step == expected.step and load_timeline(learned.run_dir).chosen_step == point.step
    info = read_run(root, learned.run_id)
    assert info.adapter_choice["step"] == point.step and info.adapter_choice["criterion"] == "eval loss"
    rm = pipeline.open_run(root, learned.run_id, model_loader=tiny_loader)
    assert rm.adapter_step == point.step and rm.tuned_label.endswith(f"step-{point.step} snapshot")
    assert pipeline.compare_run(rm, GenerationSettings(max_new_tokens=2)).adapter_step == point.step
    pipeline.restore_final(root, learned.run_id, "")
    assert read_run(root, learned.run_id).adapter_choice is None
    assert load_timeline(learned.run_dir).chosen_step is None


def test_a_run_without_validation_cannot_choose_and_says_why(runs_dir, tiny_tokenizer):
    from studio.evaluate.timeline import NO_VALIDATION, save_timeline
    from tests.builders import sample_timeline

    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    with pytest.raises(RunError, match="Score run .* snapshots first"):
        pipeline.choose_snapshot(runs_dir, run_dir.name, "", "validation_bleu")
    save_timeline(run_dir, sample_timeline(validation=False))
    with pytest.raises(RunError) as refused:
        pipeline.choose_snapshot(runs_dir, run_dir.name, "", "validation_bleu")
    assert str(refused.value) == NO_VALIDATION
    assert read_run(runs_dir, run_dir.name).adapter_choice is None


def runs_update(run_dir, **values):
    from studio.runs import update_run

    update_run(run_dir, **values)
