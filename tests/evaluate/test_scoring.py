"""Scores through the studio's `evaluate` metric: SacreBLEU's numbers, ROUGE-L as rouge-score computes it, offline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from studio.evaluate.scoring import METRIC_PATH, Scores, score, studio_metric

ROOT = Path(__file__).resolve().parents[2]
REFS = ["the cat sat on the mat", "HELLO", "a b c d", "Paris is the capital of France."]
HYPS = ["the cat sat on a mat", "  HELLO ", "", "paris, the capital of france"]
SCORER = rouge_scorer.RougeScorer(["rougeL"])


def test_score_matches_sacrebleu_and_rouge_score():
    corpus, each = score(REFS, HYPS)
    assert corpus.bleu == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert corpus.chrf == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert corpus.exact_match == pytest.approx(1 / 4) and corpus.n == 4
    rouge = [100 * SCORER.score(r, h)["rougeL"].fmeasure for r, h in zip(REFS, HYPS)]
    assert [e.rouge_l for e in each] == pytest.approx(rouge)
    assert corpus.rouge_l == pytest.approx(sum(rouge) / 4)
    assert each[0].bleu == pytest.approx(sacrebleu.sentence_bleu(HYPS[0], [REFS[0]]).score)
    assert each[0].chrf == pytest.approx(sacrebleu.sentence_chrf(HYPS[0], [REFS[0]]).score)
    assert [e.exact for e in each] == [False, True, False, False]
    assert each[2].bleu == each[2].chrf == each[2].rouge_l == 0.0


def test_score_edge_cases():
    assert score([], []) == (Scores(bleu=0.0, chrf=0.0, exact_match=0.0, n=0, rouge_l=0.0), [])
    assert score(["x y"], [""])[0].bleu == 0.0
    with pytest.raises(ValueError):
        score(["a"], [])


TEXT = st.lists(st.sampled_from(list("abcAB 12,.-_'\n") + ["the", "cat", "dog", " the "]), max_size=24).map("".join)


@settings(max_examples=150, deadline=None)
@given(prediction=TEXT, reference=TEXT)
def test_rouge_l_equals_rouge_score_on_ascii_text(prediction, reference):
    module = sys.modules[type(studio_metric()).__module__]  # the copy evaluate imported
    expected = 100 * SCORER.score(reference, prediction)["rougeL"].fmeasure
    assert module.rouge_l(prediction, reference) == pytest.approx(expected)


def test_rouge_tokens_keep_accented_words_and_split_cjk():
    module = sys.modules[type(studio_metric()).__module__]
    words = ["café", "au", "lait", "s", "il", "vous", "plaît"]
    assert module.rouge_tokens("Café au lait, s'il vous plaît") == words
    assert module.rouge_tokens("我爱北京 ok") == ["我", "爱", "北", "京", "ok"]


def test_multiple_references_and_combined_metrics():
    metric = studio_metric()
    out = metric.compute(predictions=["the cat", "b"], references=[["a dog", "the cat"], ["a", "b"]])
    streams = [["a dog", "a"], ["the cat", "b"]]
    assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(["the cat", "b"], streams).score)
    assert out["rouge_l"] == 100.0 and out["exact_match"] == 1.0
    with pytest.raises(ValueError, match="same number of references"):
        metric.compute(predictions=["a", "b"], references=[["a"], ["b", "c"]])


LOAD_BY_PATH = """
import json, sys, evaluate
metric = evaluate.load(sys.argv[1])
print(json.dumps(metric.compute(predictions=sys.argv[2:4], references=sys.argv[4:6])))
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
            "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_METRICS_CACHE": str(tmp_path / "metrics"), **extra}


def _files(folder: Path) -> list[tuple[str, float]]:
    return sorted((str(p), p.stat().st_mtime) for p in folder.rglob("*"))


def test_users_load_it_by_path_offline_and_the_repo_is_not_written(tmp_path):
    before = _files(METRIC_PATH)
    args = [str(METRIC_PATH), "the cat sat", "x", "the cat sat on the mat", "y z"]
    done = subprocess.run([sys.executable, "-c", LOAD_BY_PATH, *args], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    refs, hyps = ["the cat sat on the mat", "y z"], ["the cat sat", "x"]
    assert out["bleu"] == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert out["chrf"] == sacrebleu.corpus_chrf(hyps, [refs]).score
    assert _files(METRIC_PATH) == before  # nothing written next to the module (a read-only checkout works)
    assert list((tmp_path / "modules").rglob("studio_scores.py"))  # evaluate's copy went to its cache


def test_an_unwritable_cache_falls_back_to_a_temporary_folder(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where evaluate wants its cache folder")
    code = ("from studio.evaluate.scoring import score; "
            "print(score(['the cat sat on the mat'] * 2, ['the cat sat on the mat', 'x'])[0].chrf)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=_env(tmp_path, HF_MODULES_CACHE=str(blocker / "modules"),
                                   HF_METRICS_CACHE=str(blocker / "metrics")))
    assert done.returncode == 0, done.stderr
    expected = sacrebleu.corpus_chrf(["the cat sat on the mat", "x"], [["the cat sat on the mat"] * 2]).score
    assert float(done.stdout.strip().splitlines()[-1]) == pytest.approx(expected)
