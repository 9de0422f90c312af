"""The prompt-only baseline's record: scored as base and tuned are, tuned vs baseline, saved in comparison.json."""
from __future__ import annotations

import json

from studio.evaluate.baseline_record import BaselineRecord, score_baseline, skipped
from studio.evaluate.comparison import load_comparison, save_comparison
from studio.evaluate.generation import Answer
from studio.evaluate.scoring import ExampleScore, score
from studio.evaluate.significance import paired_bootstrap
from studio.runs import RunFolder
from tests.builders import sample_comparison, write_old_comparison


def _answers() -> list[Answer]:
    return [Answer("dog", "dog\n### x", 3, "stop"), Answer("dgo go go", "dgo go go", 8, None)]


def test_the_baseline_is_scored_like_base_and_tuned_and_compared_with_the_tuned_model():
    comparison = sample_comparison()
    record = score_baseline(comparison.rows, _answers(), 3, "3-shot: why", [4, 1, 7], limit=8, seconds=2.5)
    references = [r.reference for r in comparison.rows]
    corpus, each = score(references, ["dog", "dgo go go"])
    assert record.scores == corpus and [r.bleu for r in record.rows] == [e.bleu for e in each]
    tuned_each = [ExampleScore(r.tuned_bleu, r.tuned_chrf, r.tuned_exact, r.tuned_rouge_l) for r in comparison.rows]
    expected = paired_bootstrap(references, ["dog", "dgo go go"], [r.tuned for r in comparison.rows], each,
                                tuned_each)
    tuned_corpus, _ = score(references, [r.tuned for r in comparison.rows])
    assert record.changes == expected and record.changes["bleu"].tuned == tuned_corpus.bleu
    assert record.changes["bleu"].base == corpus.bleu  # the baseline stands where base stands: delta is tuned - it
    assert [r.cut for r in record.rows] == [False, True]
    assert record.cut_count().sentence("baseline").startswith("1 of 2")
    assert record.ran and record.label == "prompting alone (3-shot)" and record.tally is not None


def test_comparison_json_holds_the_baseline_and_old_files_still_load(tmp_path):
    run_dir = tmp_path / "run"
    RunFolder(run_dir).path.mkdir(parents=True)
    (run_dir / "run.json").write_text("{}", encoding="utf-8")
    comparison = sample_comparison()
    comparison.baseline = score_baseline(comparison.rows, _answers(), 3, "3-shot: why", [4, 1, 7], limit=8)
    save_comparison(run_dir, comparison)
    saved = json.loads(RunFolder(run_dir).comparison_file.read_text(encoding="utf-8"))["baseline"]
    assert saved["shots"] == 3 and saved["changes"]["bleu"]["verdict"] == comparison.baseline.changes["bleu"].verdict
    assert [r["answer"] for r in saved["rows"]] == ["dog", "dgo go go"]
    loaded = load_comparison(run_dir).baseline
    assert loaded.rows == comparison.baseline.rows and loaded.scores == comparison.baseline.scores
    assert loaded.changes["bleu"].delta == comparison.baseline.changes["bleu"].delta and loaded.tally.wins >= 0
    comparison.baseline = skipped("Prompting alone was not measured: it is turned off.")
    save_comparison(run_dir, comparison)
    again = load_comparison(run_dir).baseline
    assert not again.ran and again.reason.endswith("turned off.") and again.rows == []
    write_old_comparison(run_dir)
    assert load_comparison(run_dir).baseline is None
    assert BaselineRecord.from_dict({"shots": 0, "reason": "r", "later": 1}).reason == "r"
