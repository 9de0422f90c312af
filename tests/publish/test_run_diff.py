"""Two runs in words and tables (studio.publish.run_diff)."""
from __future__ import annotations

import dataclasses

from studio.evaluate.run_pair import RunPair, pair_runs
from studio.publish.run_diff import flat_settings, headline, partial_notes, score_rows, settings_diff
from studio.settings import StudioSettings
from tests.builders import sample_comparison


def test_settings_diff_lists_only_what_differs():
    a = StudioSettings().to_dict()
    b = StudioSettings.from_dict({"train": {"learning_rate": 5e-4, "epochs": 2}, "lora": {"target_modules": ["q_proj"]},
                                  "data": {"dataset": "/tmp/upload-123/words.jsonl"}}).to_dict()
    a["data"]["dataset"] = "/tmp/upload-456/words.jsonl"  # the same file uploaded twice: not a difference
    assert settings_diff(a, b) == [["lora.target_modules", "(default)", "['q_proj']"],
                                   ["train.epochs", "0.75", "2"], ["train.learning_rate", "0.001", "0.0005"]]
    assert settings_diff(a, a) == []
    assert flat_settings({"train": {"epochs": 1}}) == {"train.epochs": 1}


def test_score_rows_put_both_runs_side_by_side_with_the_difference():
    a, b = sample_comparison(), sample_comparison()
    b.rows = [dataclasses.replace(r, tuned=r.reference, tuned_exact=True) for r in b.rows]
    pair = pair_runs(a, b)
    rows = {r[0]: r for r in score_rows(pair)}
    assert list(rows) == ["BLEU", "chrF", "ROUGE-L", "Exact match"]
    assert rows["Exact match"][1:6] == ["0%", "50%", "0%", "50%", "+50.0"]  # the corpus scores as saved; B - A paired
    assert rows["BLEU"][6] == "+0.0 to +0.0"
    assert headline(pair, "run-a", "run-b").startswith("Run B (run-b) tuned BLEU ")
    assert partial_notes(a, b) == []
    b.partial, b.planned = True, 5
    assert partial_notes(a, b) == ["Run B: Stopped after 2 of 5 examples; scores cover those 2."]


def test_a_small_sure_difference_is_negligible_not_significant():
    from studio.evaluate.change import Change

    a, b = sample_comparison(), sample_comparison()
    pair = RunPair(a, b, {"bleu": Change(40.0, 40.5, 0.5, 0.1, 0.9)}, shared=2, same_rows=True)
    assert score_rows(pair)[0][-1] == "negligible"
    assert headline(pair, "a", "b").endswith("negligible.")
