"""The before/after record and its files (studio.evaluate.comparison)."""
from __future__ import annotations

import json

from studio.evaluate.comparison import load_comparison, save_comparison
from studio.runs import create_run, read_run
from studio.settings import StudioSettings
from tests.builders import sample_comparison


def test_save_and_load_comparison_round_trip(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    assert load_comparison(run.path) is None
    comparison = sample_comparison()
    save_comparison(run.path, comparison)
    assert load_comparison(run.path) == comparison
    first = json.loads((run.path / "comparison.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["base_response"] == "dog dog" and first["tuned_response"] == "DOG" and first["tuned_exact"]
    info = read_run(runs_dir, run.run_id)
    assert (info.bleu_base, info.bleu_tuned, info.exact_base, info.exact_tuned) == (2.1, 71.4, 0.0, 0.5)
    assert comparison.rows[0].delta_bleu == 100.0
