"""Answers sized to the data: Compare's `max_new_tokens` from the held-out references, and the answers cut by it.

The rule (`fit_answer_length`), in order:
1. Every reference fits the current setting (answer + EOS, tokenised as training does): keep the setting. Short,
   closed tasks (the built-in word tasks: at most 9 tokens + EOS against 12) keep their short answers.
2. Otherwise: the references' 95th-percentile length plus `MARGIN`, rounded up to a multiple of `ROUND_TO`, never
   below the current setting (the floor).
3. Capped so every generation pass of Compare (base + tuned, and a k-shot baseline when it runs) fits the time
   budget at the measured decoding rate; the cap never goes below the floor either.

Time model of one pass: the base model rarely stops, so each batch runs to the limit: `batches * max_new_tokens`
decoding steps at `steps_per_second` (steps of a full batch, measured elsewhere on this machine); prefill is left
out (one forward pass per batch). `python -m bench` measures the rate.

An answer "ran into the limit" when it used every new token and neither EOS nor a stop string ended it
(`ran_into_limit`). `generation.Answer` records neither its token count nor what ended it: generation must
record `n_tokens` (new tokens up to and including the one that ended it) and `ended_by` ("eos", "stop" or None)
per answer for `count_cut` to be fed.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from studio.data.formatting import Features, tokenize_dataset
from studio.examples import Example
from studio.settings import GenerationSettings

PERCENTILE = 95
MARGIN = 0.20  # headroom above the percentile: answers vary around their references' length
ROUND_TO = 8  # a round number reads better next to the setting ("128 tokens", not "125")
MAX_TOKENS = 4096  # GenerationSettings.max_new_tokens' own upper bound
EndedBy = Literal["eos", "stop"] | None


def answer_tokens(features: Features) -> int:
    """Tokens of the final answer as trained (+ EOS): the trailing run of trained positions."""
    # Earlier assistant turns of a chat are trained too, but a masked piece (the last user turn) separates them.
    n = 0
    for trained in reversed(features.completion_mask):
        if not trained:
            break
        n += 1
    return n


def reference_lengths(tokenizer: Any, template: Any, examples: Sequence[Example]) -> list[int]:
    """Each reference answer's token count + EOS, tokenised exactly as training tokenises it (untruncated)."""
    longest = 1 << 30  # no truncation: the lengths the model would have to write
    return [answer_tokens(f) for f in tokenize_dataset(tokenizer, template, examples, longest)]


def percentile(values: Sequence[int], q: float = PERCENTILE) -> int:
    """The nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]


@dataclass(frozen=True)
class AnswerLength:
    """The chosen `max_new_tokens` and why, in one sentence."""

    max_new_tokens: int
    reason: str
    floor: int
    fitted: int | None = None  # percentile + margin, before the budget's cap (None when the floor was kept)
    cap: int | None = None  # the budget's limit (None without a budget or a rate)
    references: int = 0
    longer: int = 0  # references (answer + EOS) longer than the chosen limit

    @property
    def capped(self) -> bool:
        """Whether the time budget lowered the fitted length."""
        return self.fitted is not None and self.max_new_tokens < self.fitted


def budget_cap(budget_seconds: float, steps_per_second: float, passes: int, n_prompts: int,
               batch_size: int) -> int:
    """The most new tokens per answer that let `passes` generation passes over the prompts fit the budget."""
    batches = max(math.ceil(n_prompts / batch_size), 1)
    return int(budget_seconds * steps_per_second / (max(passes, 1) * batches))


def _round_up(n: int) -> int:
    return -(-n // ROUND_TO) * ROUND_TO


def fit_answer_length(lengths: Sequence[int], floor: int = GenerationSettings.max_new_tokens, *, passes: int = 2,
                      batch_size: int = GenerationSettings.batch_size, budget_seconds: float | None = None,
                      steps_per_second: float | None = None) -> AnswerLength:
    """Compare's `max_new_tokens` from the references' token lengths (answer + EOS), the floor and the budget."""
    n = len(lengths)
    if not n:
        return AnswerLength(floor, f"answers up to {floor} tokens: no held-out references to size them by.", floor)
    if max(lengths) <= floor:
        return AnswerLength(floor, f"answers up to {floor} tokens: all {n} references fit (the longest is "
                                   f"{max(lengths)} tokens with its end-of-text token).", floor, references=n)
    p = percentile(lengths)
    fitted = min(_round_up(math.ceil(p * (1 + MARGIN))), MAX_TOKENS)
    reason = f"the {PERCENTILE}th percentile of the {n} references is {p} tokens, plus {MARGIN:.0%}"
    if fitted <= floor:  # a few long outliers: the setting already covers the rest
        reason += f" ({fitted}) is within the {floor}-token setting"
        fitted = floor
    cap = None
    if budget_seconds is not None and steps_per_second:
        cap = budget_cap(budget_seconds, steps_per_second, passes, n, batch_size)
    chosen = fitted if cap is None or cap >= fitted else max(cap, floor)
    if chosen < fitted:
        budget = (f"the {_duration(budget_seconds)} budget for {passes} passes at {steps_per_second:.1f} "
                  "decoding steps/s")
        reason += (f" ({fitted}); capped by {budget}" if chosen > floor else
                   f" ({fitted}); {budget} allows only {cap}, so the {floor}-token setting stays")
    longer = sum(length > chosen for length in lengths)
    return AnswerLength(chosen, f"answers up to {chosen} tokens: {reason}.", floor, fitted, cap, n, longer)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"


def ran_into_limit(n_new_tokens: int, limit: int, ended_by: EndedBy) -> bool:
    """Whether an answer was cut by the token limit: it used every new token and neither EOS nor a stop ended it."""
    return ended_by is None and n_new_tokens >= limit


@dataclass(frozen=True)
class CutCount:
    """How many answers ran into the limit instead of stopping."""

    cut: int
    total: int
    limit: int

    @property
    def label(self) -> str:
        """The mark on a cut answer in the table."""
        return cut_label(self.limit)

    def sentence(self, who: str) -> str:
        """One line for the headline, e.g. '45 of 48 tuned answers were cut at 12 tokens.'"""
        were = "was" if self.cut == 1 else "were"
        return f"{self.cut} of {self.total} {who} answers {were} cut at {self.limit} tokens."


def cut_label(limit: int) -> str:
    """The table's mark on an answer that ran into the limit."""
    return f"cut at {limit} tokens"


def count_cut(answers: Iterable[tuple[int, EndedBy]], limit: int) -> CutCount:
    """Count the answers, given as (new tokens, what ended them), that ran into the limit."""
    flags = [ran_into_limit(n, limit, ended) for n, ended in answers]
    return CutCount(sum(flags), len(flags), limit)
