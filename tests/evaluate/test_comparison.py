"""The before/after record and its files (studio.evaluate.comparison), including files written by older versions."""
from __future__ import annotations

import json

from studio.evaluate.answer_loss_record import ExampleLoss, summarise
from studio.evaluate.change import Change
from studio.evaluate.comparison import load_comparison, row_cuts, save_comparison
from studio.evaluate.generation import Answer
from studio.runs import create_run, read_run
from studio.settings import StudioSettings
from tests.builders import sample_comparison, write_old_comparison


def test_save_and_load_comparison_round_trip(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    assert load_comparison(run.path) is None
    comparison = sample_comparison()
    save_comparison(run.path, comparison)
    assert load_comparison(run.path) == comparison
    first = json.loads((run.path / "comparison.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["base_response"] == "dog dog" and first["tuned_response"] == "DOG" and first["tuned_exact"]
    assert first["base_raw"] == "dog dog\n### Input:\ncat" and first["tuned_rouge_l"] == 100.0
    summary = json.loads((run.path / "comparison.json").read_text(encoding="utf-8"))
    assert summary["changes"]["bleu"] == {"base": 2.1, "tuned": 71.4, "delta": 69.3, "low": 40.5, "high": 95.2,
                                          "verdict": "gain"}
    assert summary["changes"]["chrf"]["verdict"] == "not significant"
    assert summary["tally"] == {"wins": 1, "ties": 0, "losses": 1}
    assert summary["stop_strings"] == ["\n### "] and summary["eos_tokens"] == ["<eos>"]
    assert summary["bootstrap"]["resamples"] == 1000 and summary["base"]["rouge_l"] == 33.3
    info = read_run(runs_dir, run.run_id)
    assert (info.bleu_base, info.bleu_tuned, info.exact_base, info.exact_tuned) == (2.1, 71.4, 0.0, 0.5)
    assert comparison.rows[0].delta_bleu == 100.0


def test_a_comparison_saved_by_an_older_version_loads(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    write_old_comparison(run.path)
    old = load_comparison(run.path)
    assert old.base.bleu == 0.3 and old.base.rouge_l is None and old.tuned.n == 2
    assert old.stop_strings is None and old.changes == {} and old.tally is None and old.bootstrap == {}
    assert old.rows[0].base == "dog ###" and old.rows[0].base_raw == "" and old.rows[0].tuned_rouge_l is None
    # Fields added for long answers: not recorded then, so nothing is claimed about them.
    assert old.answer_loss is None and old.answer_length is None and old.answer_length_reason == ""
    assert old.rows[0].base_cut is None and old.cut_count("tuned") is None and old.limit == 16


def test_a_partial_comparison_says_how_many_it_covers_and_older_files_are_complete(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    partial = sample_comparison()
    partial.partial, partial.planned, partial.adapter_step = True, 24, 40
    save_comparison(run.path, partial)
    loaded = load_comparison(run.path)
    assert (loaded.partial, loaded.planned, loaded.n_planned, loaded.adapter_step) == (True, 24, 24, 40)
    write_old_comparison(run.path)
    old = load_comparison(run.path)
    assert (old.partial, old.planned, old.n_planned, old.adapter_step) == (False, 0, 2, None)


def long_answer_comparison():
    """The sample comparison with a fitted length limit, answers cut by it, and the held-out answer loss."""
    cmp = sample_comparison()
    cmp.rows[0].base_cut, cmp.rows[0].tuned_cut = True, False
    cmp.rows[1].base_cut, cmp.rows[1].tuned_cut = True, True
    cmp.answer_length, cmp.answer_length_reason = 128, "answers up to 128 tokens: the 95th percentile ..."
    cmp.answer_loss = summarise([ExampleLoss(0, 30, 2.0, 1.6), ExampleLoss(1, 50, 2.2, 1.7)], base_seconds=0.5,
                                tuned_seconds=0.25)
    return cmp


def test_the_length_limit_cut_answers_and_answer_loss_round_trip(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    comparison = long_answer_comparison()
    save_comparison(run.path, comparison)
    loaded = load_comparison(run.path)
    assert loaded == comparison and loaded.answer_loss.perplexity.base > loaded.answer_loss.perplexity.tuned
    assert (loaded.limit, loaded.cut_count("base").cut, loaded.cut_count("tuned").cut) == (128, 2, 1)
    summary = json.loads((run.path / "comparison.json").read_text(encoding="utf-8"))
    assert summary["answer_length"] == 128 and summary["answer_length_reason"].startswith("answers up to 128")
    assert summary["answer_loss"]["better"] == 2 and "minimum" not in summary["answer_loss"]["perplexity"]
    rows = [json.loads(line) for line in (run.path / "comparison.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["base_cut"], r["tuned_cut"]) for r in rows] == [(True, False), (True, True)]


def test_a_sure_but_tiny_change_is_saved_as_negligible(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    comparison = sample_comparison()
    comparison.changes["bleu"] = Change(0.1, 0.2, 0.1, 0.01, 0.2)  # "+0.1 BLEU, significant" before
    save_comparison(run.path, comparison)
    summary = json.loads((run.path / "comparison.json").read_text(encoding="utf-8"))
    assert summary["changes"]["bleu"]["verdict"] == "negligible"
    assert load_comparison(run.path).changes["bleu"] == comparison.changes["bleu"]


def test_row_cuts_marks_the_answers_that_ran_into_the_limit():
    stopped, ended, ran_on = Answer("a", "a\n###", 3, "stop"), Answer("b", "b<eos>", 12, "eos"), Answer("c", "c", 12)
    assert row_cuts(stopped, ran_on, 12) == {"base_cut": False, "tuned_cut": True}
    assert row_cuts(ended, Answer("d", "d", 5), 12) == {"base_cut": False, "tuned_cut": False}  # under the limit
    assert sample_comparison().cut_count("base") is None  # not recorded: no count, rather than "0 cut"
