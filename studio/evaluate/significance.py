"""How sure is the gain: a paired-bootstrap confidence interval of each metric's change, and per-example win/tie/loss.

Paired bootstrap resampling (Koehn 2004), our own implementation over SacreBLEU's sufficient statistics: each of
`RESAMPLES` resamples draws n held-out examples with replacement (numpy `default_rng(SEED).choice`, as
`sacrebleu.significance` draws its resamples), the SAME indices for base and tuned, and recomputes both corpus
scores from the summed per-sentence statistics, exactly as `corpus_bleu` / `corpus_chrf` would on those examples.
The interval is the 2.5th and 97.5th percentile (numpy's linear interpolation) of tuned minus base. SacreBLEU's own
paired test reports a p-value and each system's interval, not the interval of the change, hence our own.
ROUGE-L and exact match are means over examples, resampled with the same indices; the forgetting probe's
per-item accuracies go through the same resampling (`paired_interval`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sacrebleu

from studio.compat import corpus_statistics, score_from_statistics
from studio.evaluate.change import Change, Tally
from studio.evaluate.scoring import ExampleScore

RESAMPLES = 1000
SEED = 12345  # sacrebleu's default SACREBLEU_SEED
CONFIDENCE = 0.95
METHOD = (f"paired bootstrap, {RESAMPLES} resamples of the held-out examples (seed {SEED}), the same examples "
          f"for base and tuned; {CONFIDENCE:.0%} percentile interval of the change")
_FIELD = {"rouge_l": "rouge_l", "exact_match": "exact"}  # metric -> ExampleScore field


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The (resamples, n) example indices every metric and both models share."""
    return np.random.default_rng(seed).choice(n, size=(resamples, n), replace=True)


def paired_interval(base: list[float], tuned: list[float], resamples: int = RESAMPLES, seed: int = SEED,
                    confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of mean(tuned) - mean(base) over items resampled in pairs (`resample_indices`)."""
    b, t = np.asarray(base, dtype=float), np.asarray(tuned, dtype=float)
    if b.shape != t.shape or b.size == 0:
        raise ValueError("base and tuned need the same, non-zero number of items")
    return _interval((t - b)[resample_indices(b.size, resamples, seed)].mean(axis=1), confidence)


def bootstrap_record() -> dict[str, Any]:
    """How the intervals were computed, for comparison.json and the report."""
    return {"method": METHOD, "resamples": RESAMPLES, "seed": SEED, "confidence": CONFIDENCE,
            "implementation": "studio.evaluate.significance (own, over SacreBLEU sufficient statistics)"}


def _interval(deltas: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(references: list[str], base: list[str], tuned: list[str], base_each: list[ExampleScore],
                     tuned_each: list[ExampleScore], resamples: int = RESAMPLES, seed: int = SEED,
                     confidence: float = CONFIDENCE) -> dict[str, Change]:
    """BLEU, chrF, ROUGE-L and exact-match changes of `tuned` over `base`, each with its paired-bootstrap interval."""
    n = len(references)
    if not n:
        return {}
    idx = resample_indices(n, resamples, seed) if n >= 2 else None
    changes = {}
    for name, metric in (("bleu", sacrebleu.BLEU()), ("chrf", sacrebleu.CHRF())):
        # Per-sentence sufficient statistics: a corpus score is a function of their sum over the examples.
        sb, st = (np.array(corpus_statistics(metric, h, [references]), dtype=np.float64) for h in (base, tuned))
        changes[name] = _change(lambda rows, s: float(score_from_statistics(metric, s[rows].sum(0)).score), sb, st,
                                idx, confidence)
    for name, scale in (("rouge_l", 1.0), ("exact_match", 100.0)):
        vb, vt = (scale * np.array([float(getattr(e, _FIELD[name])) for e in each]) for each in (base_each, tuned_each))
        changes[name] = _change(lambda rows, v: float(v[rows].mean()), vb, vt, idx, confidence)
    return changes


def _change(corpus: Callable[[Any, np.ndarray], float], base: np.ndarray, tuned: np.ndarray,
            idx: np.ndarray | None, confidence: float) -> Change:
    everything = slice(None)
    b, t = corpus(everything, base), corpus(everything, tuned)
    change = Change(base=b, tuned=t, delta=t - b)
    if idx is not None:
        deltas = np.array([corpus(rows, tuned) - corpus(rows, base) for rows in idx])
        change.low, change.high = _interval(deltas, confidence)
    return change


def win_tie_loss(base_bleu: list[float], tuned_bleu: list[float], margin: float = Tally.MARGIN) -> Tally:
    """How many examples tuning made better, left equal (within `margin` sentence-BLEU points) or made worse."""
    deltas = [t - b for b, t in zip(base_bleu, tuned_bleu)]
    wins, losses = sum(d >= margin for d in deltas), sum(d <= -margin for d in deltas)
    return Tally(wins=wins, ties=len(deltas) - wins - losses, losses=losses)
