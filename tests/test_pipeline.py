"""After training: reopen a run through the injected loader, compare it, write results and the report."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from studio import pipeline
from studio.errors import RunError
from studio.evaluate.comparison import load_comparison
from studio.runs import RunFolder, create_run, read_run
from studio.examples import Example
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


def test_the_timeline_answers_at_the_length_its_references_need(learned, monkeypatch):
    from studio.evaluate import snapshot_scores

    rm = pipeline.from_job(learned)
    used = []
    real = snapshot_scores.score_snapshots
    monkeypatch.setattr(pipeline, "score_snapshots", lambda *a: used.append(a[6]) or real(*a))
    for gen in (GenerationSettings(max_new_tokens=2), GenerationSettings(max_new_tokens=2, max_new_tokens_auto=False)):
        with pytest.raises(snapshot_scores.NothingScored):  # stopped at once: only the settings it was given matter
            pipeline.score_snapshots_run(rm, gen, should_stop=lambda: True)
    # The word references need more than 2 tokens: sized up as Compare does; set by hand, exactly as set.
    assert used[0].max_new_tokens > 2 and used[1].max_new_tokens == 2


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


LONG = [Example(instruction=f"Describe {w}.", output=" ".join([w, "is", "a", "word", "that", "people", "use"] * 3))
        for w in ("apple", "river", "stone", "tiger")]


def test_compare_run_scores_the_answer_loss_and_flags_answers_cut_by_the_limit(finished, runs_dir, tiny_loader):
    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    seen, scored = [], []
    result = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=12, baseline_shots=0),
                                  progress=lambda which, done, total: seen.append(which),
                                  loss_progress=lambda which, done, total: scored.append((which, done, total)))
    loss = result.answer_loss
    assert loss is not None and loss.n == len(TEST) and not loss.partial
    assert loss.better + loss.same + loss.worse == len(TEST) and loss.perplexity.base > 0
    assert scored == [("base", 2, 2), ("tuned", 2, 2)] and seen == ["base", "tuned"]
    assert all(r.base_cut is not None and r.tuned_cut is not None for r in result.rows)
    assert result.cut_count("base").total == len(TEST) and result.limit == result.answer_length
    # The short answers fit the setting: it is kept, and the saved file says why.
    assert result.answer_length == 12 and "all 2 references fit" in result.answer_length_reason
    saved = load_comparison(finished)
    assert saved.answer_loss == loss and saved.answer_length_reason == result.answer_length_reason
    assert json.loads(RunFolder(finished).comparison_file.read_text())["answer_loss"]["perplexity"]["base"] > 0


def test_long_references_raise_the_answer_length_and_say_why(finished, runs_dir, tiny_loader, monkeypatch):
    from studio.evaluate import before_after

    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    rm.test = LONG
    measured = []
    monkeypatch.setattr(before_after, "decoding_rate", lambda *a, **k: measured.append(a[2]) or 1000.0)
    result = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=4, batch_size=2))
    assert measured == [2]  # measured once, at Compare's batch size
    assert result.answer_length > 4 and result.generation["max_new_tokens"] == result.answer_length
    assert result.answer_length_reason.startswith(f"answers up to {result.answer_length} tokens: the 95th percentile")
    # 64 tokens leave no room to loop: no loop guard.
    assert result.answer_length == 64 and result.generation["repetition_penalty"] == 1.0
    assert "loop guard" not in result.answer_length_reason
    # Hand-set: exactly the setting, and no rate to measure.
    by_hand = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=4, max_new_tokens_auto=False))
    assert by_hand.answer_length == 4 and "set by hand" in by_hand.answer_length_reason and measured == [2]
    assert by_hand.cut_count("tuned").limit == 4


def test_answers_over_64_tokens_get_the_loop_guard_in_the_saved_settings(finished, runs_dir, tiny_loader,
                                                                          monkeypatch):
    from studio.evaluate import before_after

    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    rm.test = [replace(e, output=f"{e.output} {e.output}") for e in LONG]
    monkeypatch.setattr(before_after, "decoding_rate", lambda *a, **k: 1000.0)
    result = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=4, batch_size=4, baseline_shots=0))
    assert result.answer_length > 64 and result.generation["repetition_penalty"] == 1.15
    assert result.answer_length_reason.endswith("a repetition penalty of 1.15 keeps answers over 64 tokens out of "
                                                "loops (the loop guard).")
    assert load_comparison(finished).generation_settings().repetition_penalty == 1.15
    off = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=4, batch_size=4, baseline_shots=0,
                                                      repetition_penalty_auto=False))
    assert off.generation["repetition_penalty"] == 1.0 and "loop guard" not in off.answer_length_reason


def test_the_time_budget_caps_the_fitted_length(finished, runs_dir, tiny_loader, monkeypatch):
    from studio.evaluate import before_after

    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    rm.test = LONG
    monkeypatch.setattr(before_after, "decoding_rate", lambda *a, **k: 2.0)
    monkeypatch.setattr(before_after, "prefill_seconds", lambda *a, **k: 1.0)
    result = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=4, batch_size=4, answer_budget_seconds=12))
    # 12 s less 1 s reading the prompts per pass, at 2 steps/s for 2 passes of one batch: 10 new tokens.
    assert result.answer_length == 10 and "capped by the 12-second budget for 2 passes" in result.answer_length_reason
    assert result.answer_length_reason.endswith(", after 1 s a pass reading the prompts.")  # 10 tokens: no guard


def test_a_stop_during_the_answer_loss_compares_nothing(finished, runs_dir, tiny_loader):
    from studio.evaluate.before_after import NothingCompared

    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    with pytest.raises(NothingCompared):
        pipeline.compare_run(rm, GenerationSettings(max_new_tokens=3), should_stop=lambda: True)
    assert load_comparison(finished) is None


def test_the_measured_decoding_rate_is_positive(finished, runs_dir, tiny_loader):
    from studio.evaluate.before_after import decoding_rate

    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    assert decoding_rate(rm.model, rm.tokenizer, batch_size=3, steps=2) > 0


def test_reference_lengths_are_cached_on_the_run_model(finished, runs_dir, tiny_loader):
    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    lengths = rm.reference_lengths()
    assert len(lengths) == len(TEST) and all(n >= 2 for n in lengths) and rm.reference_lengths() is lengths


def test_compare_run_adds_the_prompt_only_baseline_unless_it_is_off(finished, runs_dir, tiny_loader):
    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    assert rm.train and len(rm.train) == len(RunFolder(finished).read_split("train"))
    seen = []
    result = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=6, baseline_shots=2),
                                  progress=lambda which, done, total: seen.append(which))
    baseline = result.baseline
    assert baseline.ran and baseline.shots == 2 and len(baseline.rows) == len(result.rows)
    assert baseline.reason.startswith("2-shot: 2 training examples before each prompt")
    assert seen[-1] == "baseline (2-shot)" and set(baseline.changes) == set(result.changes)
    assert baseline.changes["bleu"].tuned == pytest.approx(result.tuned.bleu)
    assert load_comparison(finished).baseline == baseline
    off = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=6, baseline_shots=0))
    assert not off.baseline.ran and "turned off" in off.baseline.reason
    assert [r.base for r in off.rows] == [r.base for r in result.rows]  # base and tuned are the same either way
    assert [r.tuned for r in off.rows] == [r.tuned for r in result.rows]


def test_compare_run_flags_held_out_prompts_that_repeat_a_training_prompt(runs_dir, tiny_loader, tiny_tokenizer):
    from studio.publish import scorecard
    from tests.builders import TRAIN

    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    repeat = Example(instruction="UPPERCASE the word!", input=" Apple", output="APPLE")  # TRAIN[0], retyped
    RunFolder(run_dir).write_splits({"train": TRAIN, "test": [*TEST, repeat], "validation": []})
    rm = pipeline.open_run(runs_dir, run_dir.name, model_loader=tiny_loader)
    result = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=3, baseline_shots=0))
    saved = load_comparison(run_dir)
    assert [r.overlap for r in saved.rows] == ["", "", "exact"] and saved.overlap["flags"] == ["", "", "exact"]
    assert saved == result and scorecard.headline_comparison(saved).tuned.n == 2
    sentence = ("1 held-out prompt that repeats or nearly repeats a training prompt is left out of the headline")
    assert sentence in scorecard.headline(saved) and sentence in RunFolder(run_dir).report_md.read_text()
