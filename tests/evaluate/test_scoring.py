"""Corpus and sentence scores against SacreBLEU (studio.evaluate.scoring)."""
from __future__ import annotations

import pytest
import sacrebleu

from studio.evaluate.scoring import Scores, score


def test_score_matches_sacrebleu():
    refs = ["the cat sat on the mat", "HELLO", "a b c d"]
    hyps = ["the cat sat on a mat", "  HELLO ", ""]
    corpus, each = score(refs, hyps)
    assert corpus.bleu == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert corpus.chrf == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert corpus.exact_match == pytest.approx(1 / 3) and corpus.n == 3
    assert each[0].bleu == pytest.approx(sacrebleu.sentence_bleu(hyps[0], [refs[0]]).score)
    assert [e.exact for e in each] == [False, True, False]
    assert each[2].bleu == 0.0 and each[2].chrf == 0.0


def test_score_edge_cases():
    assert score([], []) == (Scores(bleu=0.0, chrf=0.0, exact_match=0.0, n=0), [])
    assert score(["x y"], [""])[0].bleu == 0.0
    with pytest.raises(ValueError):
        score(["a"], [])
