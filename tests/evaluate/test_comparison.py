"""The before/after record and its files (studio.evaluate.comparison), including files written by older versions."""
from __future__ import annotations

import json

from studio.evaluate.comparison import load_comparison, save_comparison
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
