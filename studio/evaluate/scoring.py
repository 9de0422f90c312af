"""Scoring answers against references with SacreBLEU (BLEU, chrF) and exact match.

The `evaluate` library fetches its sacrebleu metric code from the Hub at run time, so this calls `sacrebleu` directly:
the same implementation, no network.
"""
from __future__ import annotations

from dataclasses import dataclass

import sacrebleu


@dataclass
class Scores:
    """Corpus scores of one model on the held-out examples (BLEU and chrF 0-100, exact match 0-1)."""

    bleu: float
    chrf: float
    exact_match: float
    n: int


@dataclass
class ExampleScore:
    """Sentence-level scores of one answer."""

    bleu: float
    chrf: float
    exact: bool


def score(references: list[str], hypotheses: list[str]) -> tuple[Scores, list[ExampleScore]]:
    """Corpus BLEU/chrF/exact match plus per-example scores (SacreBLEU defaults; empty answers score 0)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} answers.")
    if not references:
        return Scores(bleu=0.0, chrf=0.0, exact_match=0.0, n=0), []
    per = [
        ExampleScore(
            bleu=sacrebleu.sentence_bleu(hyp, [ref]).score,
            chrf=sacrebleu.sentence_chrf(hyp, [ref]).score,
            exact=hyp.strip() == ref.strip(),
        )
        for ref, hyp in zip(references, hypotheses)
    ]
    corpus = Scores(
        bleu=sacrebleu.corpus_bleu(hypotheses, [references]).score,
        chrf=sacrebleu.corpus_chrf(hypotheses, [references]).score,
        exact_match=sum(s.exact for s in per) / len(per),
        n=len(per),
    )
    return corpus, per
