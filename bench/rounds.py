"""Rounds of `python -m bench`: who runs when, and what a figure was over the rounds.

On a shared host the speed of the machine drifts by more than the code changes, so every contender runs once per
round, rounds are interleaved, and every ratio is taken inside a round (the studio against the baseline that ran
next to it, each MFU against the GEMM ceiling measured in that round). The bench then reports min / median / max of
those per-round values and judges every target on the median. Everything here is pure.
"""
from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

DEFAULT_ROUNDS = 5  # odd, so the median is one round's own figure; two rounds cannot tell the code from the host


def round_order(names: Sequence[str], round_: int) -> list[str]:
    """The order of round `round_` (0-based): every other round runs backwards, so no contender always has the
    first (or last) slot, and neighbours stay neighbours (the studio runs next to TRL in every round)."""
    order = list(names)
    return order if round_ % 2 == 0 else order[::-1]


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Min, median and max of per-round values, with the values in round order."""
    rounds = [float(v) for v in values]
    if not rounds:
        raise ValueError("a spread needs at least one round")
    return {"min": min(rounds), "median": statistics.median(rounds), "max": max(rounds), "rounds": rounds}


def ratios(top: Sequence[float], bottom: Sequence[float]) -> list[float]:
    """top / bottom round by round (both measured in the same round)."""
    if len(top) != len(bottom):
        raise ValueError(f"{len(top)} rounds against {len(bottom)}: a ratio pairs the same rounds")
    return [t / b for t, b in zip(top, bottom)]


def format_spread(s: dict[str, Any], fmt: str = "{:.2f}x") -> str:
    """'2.80x (min 2.30x, max 3.40x, 5 rounds)': the median first, as the targets read it (`fmt` "{:.0%}" for MFU)."""
    median, low, high = (fmt.format(s[k]) for k in ("median", "min", "max"))
    n = len(s["rounds"])
    return f"{median} (min {low}, max {high}, {n} round{'s' if n != 1 else ''})"

