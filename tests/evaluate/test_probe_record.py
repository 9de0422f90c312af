"""The probe's record: the paired bootstrap interval, the plain sentence, the summary and its file (pure, no model)."""
from __future__ import annotations

import json
import re

import pytest

from studio.errors import RunError
from studio.evaluate.probe_record import (
    CategoryScore,
    ProbeResult,
    category_score,
    label_of,
    load_probe,
    save_probe,
    summarize,
    verdict,
)
from studio.evaluate.significance import RESAMPLES, SEED, paired_interval
from studio.runs import RunFolder, create_run
from studio.settings import StudioSettings


def score(label: str, base: float, tuned: float, low: float, high: float, n: int = 40) -> CategoryScore:
    return CategoryScore(f"probe_{label}", label, n, base, tuned, low, high)


def test_a_category_uses_the_one_paired_bootstrap_of_compare():
    base, tuned = [1.0] * 40, [1.0] * 34 + [0.0] * 6
    got = category_score("probe_arithmetic", base, tuned)
    assert (got.low, got.high) == paired_interval(base, tuned) and got.lost
    assert f"{RESAMPLES:,} resamples, seed {SEED}" in ProbeResult.__dataclass_fields__["interval"].default


def test_labels_of_built_in_and_other_tasks():
    assert label_of("probe_word_relations") == "word relations"
    assert label_of("arc_easy") == "arc_easy"


def test_sentence_names_the_categories_that_lost_worst_first():
    overall = score("overall", 0.8, 0.75, -0.08, -0.02, n=200)
    cats = [score("arithmetic", 0.5, 0.44, -0.10, -0.02), score("grammar", 0.9, 0.8, -0.2, -0.05),
            score("reading", 0.8, 0.82, -0.05, 0.08)]
    assert verdict(cats, overall) == "Lost 10 points on grammar, 6 on arithmetic."


def test_sentence_when_nothing_is_significant():
    overall = score("overall", 0.8, 0.79, -0.03, 0.01, n=200)
    cats = [score("arithmetic", 0.5, 0.45, -0.12, 0.03), score("reading", 0.8, 0.9, 0.025, 0.175)]
    assert verdict(cats, overall) == "No significant loss; gained 10 points on reading."
    assert verdict(cats[:1], overall) == "No significant loss."


def test_sentence_when_only_the_whole_probe_lost():
    overall = score("overall", 0.8, 0.76, -0.07, -0.01, n=200)
    cats = [score("arithmetic", 0.5, 0.45, -0.12, 0.03)]
    assert verdict(cats, overall).startswith("Lost 4 points overall")


def summary() -> ProbeResult:
    base = {"probe_arithmetic": {"acc": [1.0, 1.0, 0.0, 1.0], "acc_norm": [1.0, 0.0, 0.0, 1.0]},
            "probe_reading": {"acc": [1.0, 1.0], "acc_norm": [1.0, 1.0]}}
    tuned = {"probe_arithmetic": {"acc": [0.0, 1.0, 0.0, 1.0], "acc_norm": [0.0, 0.0, 0.0, 1.0]},
             "probe_reading": {"acc": [1.0, 1.0], "acc_norm": [1.0, 1.0]}}
    return summarize(["probe_arithmetic", "probe_reading"], base, tuned, 1.5, 2.5)


def test_summary_per_category_and_pooled_overall():
    result = summary()
    arithmetic, reading = result.categories
    assert (arithmetic.label, arithmetic.n, arithmetic.base, arithmetic.tuned) == ("arithmetic", 4, 0.75, 0.5)
    assert reading.change == 0.0 and not reading.lost
    assert (result.overall.n, result.overall.base, result.overall.tuned) == (6, 5 / 6, 4 / 6)
    assert result.metric == "acc" and "paired bootstrap" in result.interval
    assert re.fullmatch(r"probe accuracy base \d+\.\d% -> tuned \d+\.\d%", result.last_line)
    assert result.last_line == "probe accuracy base 83.3% -> tuned 66.7%"


def test_summary_refuses_a_task_without_the_metric():
    with pytest.raises(RunError, match="reported no acc"):
        summarize(["probe_x"], {"probe_x": {"acc_norm": [1.0]}}, {"probe_x": {"acc_norm": [1.0]}})


def test_category_score_matches_a_hand_count():
    s = category_score("probe_grammar", [1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0])
    assert (s.base, s.tuned, s.change, s.n, s.label) == (0.75, 0.5, -0.25, 4, "grammar")
    assert s.low <= s.change <= s.high


def test_saved_result_reads_back_with_its_sentence(tmp_path):
    run_dir = create_run(tmp_path, StudioSettings()).path
    assert load_probe(run_dir) is None
    result = summary()
    path = save_probe(run_dir, result)
    assert path == RunFolder(run_dir).probe_file
    record = json.loads(path.read_text())
    assert record["sentence"] == result.sentence and record["items"]["probe_reading"]["tuned"]["acc"] == [1.0, 1.0]
    assert load_probe(run_dir) == result


def test_unreadable_result_is_one_sentence(tmp_path):
    run_dir = create_run(tmp_path, StudioSettings()).path
    RunFolder(run_dir).probe_file.write_text("{oops")
    with pytest.raises(RunError, match="unreadable probe result"):
        load_probe(run_dir)
