"""Answers sized to the data: Compare's `max_new_tokens` from the held-out references, and the answers cut by it.

The rule (`fit_answer_length`), in order:
1. Every reference fits the current setting (answer + EOS, tokenised as training does): keep the setting. Short,
   closed tasks (the built-in word tasks: at most 9 tokens + EOS against 12) keep their short answers.
2. Otherwise: the references' 95th-percentile length plus `MARGIN`, rounded up to a multiple of `ROUND_TO`, never
   below the current setting (the floor).
3. Capped so every generation pass of Compare (base + tuned, and a k-shot baseline when it runs) fits the time
   budget at the measured decoding rate; the cap never goes below the floor either.

Time model of one pass: first each batch reads its prompts (`prefill_seconds`, measured elsewhere: the tokens the
batch reads as `prefill` plans it: a shared start once, length groups, at this machine's reading rate), then the
base model rarely stops, so each batch runs to the limit: `batches * max_new_tokens` decoding steps at
`steps_per_second` (steps of a full batch, measured elsewhere on this machine). `python -m bench` measures the rate.

An answer "ran into the limit" when it used every new token and neither EOS nor a stop string ended it
(`ran_into_limit`). `generation.Answer` records neither its token count nor what ended it: generation must
record `n_tokens` (new tokens up to and including the one that ended it) and `ended_by` ("eos", "stop" or None)
per answer for `count_cut` to be fed.

A cut answer is "stuck in a loop" (`repeats_itself`) when its end only repeats what it already wrote: greedy decoding
of a small model often settles into one sentence or list item written again and again ("I'm sorry, I'm sorry. I'm
sorry, ..."). No longer limit would have ended such an answer, so the count says so apart from the answers the limit
cut while they were still writing something new. It is read from the answer's text alone, so every answer keeps the
text the model wrote (a GGUF export answers the same) and comparisons saved before it are classified the same way.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from studio.data.formatting import Features, tokenize_dataset
from studio.examples import Example
from studio.settings import GenerationSettings

PERCENTILE = 95
MARGIN = 0.20  # headroom above the percentile: answers vary around their references' length
ROUND_TO = 8  # a round number reads better next to the setting ("128 tokens", not "125")
MAX_TOKENS = 4096  # GenerationSettings.max_new_tokens' own upper bound
EndedBy = Literal["eos", "stop"] | None
# A loop: of the last LOOP_WINDOW word trigrams (at most half the answer's), at least LOOP_SHARE appeared earlier in
# it; a list's numbering is left out, so "7. Kale + almond butter" written again as "8. ..." repeats. Measured on
# Gemma 3 270M's answers to 43 AlpacaEval prompts (bench owndata): of the 38 that ran into a 137-token limit, 35
# were verbatim loops and scored 0.78 or more; the other 3 scored 0.5 or less (two lists counting on, "the seventh
# ... the eighth ...", and one sentence written only twice). Of AlpacaEval's 805 human-written references only a
# regular expression that repeats one group scores above 0.56; of HumanEval's 164 programs (prompt + solution) none
# reaches 0.75, and of its test suites 3, each a run of `assert not candidate("...")` lines differing only in brackets.
LOOP_WINDOW = 40
LOOP_SHARE = 0.75
LOOP_MIN_TRIGRAMS = 12  # fewer words than this say too little to call it a loop
_WORD = re.compile(r"\w+")
_NUMBERING = re.compile(r"^\s*\d+[.)]\s+", re.MULTILINE)
LOOPING = "stuck in a loop"  # the words every mark, ending and headline uses for such an answer
# The loop guard (`loop_penalty`): answers allowed more than LONG_ANSWER_TOKENS get a repetition penalty of at least
# LOOP_PENALTY (transformers' `repetition_penalty`: a token already in the prompt or the answer has its logit divided
# by it when positive, multiplied when negative; llama.cpp's and Ollama's `repeat_penalty` over the whole context is
# the same rule). Measured on the same 43 AlpacaEval answers with a 144-token limit: the tuned model ran into the
# limit 22 times at 1.0 (21 of them loops), 2 at 1.15 (no loop) and 4 at 1.3 (no loop); chrF 27.2, 28.2 and 25.4.
# Short answers are left alone: they have no room to loop, and a penalty would push a word task away from the very
# words its answer must copy from the prompt (the built-in samples keep their answers).
LONG_ANSWER_TOKENS = 64
LOOP_PENALTY = 1.15


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


def set_by_hand(limit: int) -> AnswerLength:
    """The length as set, when fitting to the data is off."""
    return AnswerLength(limit, f"answers up to {limit} tokens: set by hand (fitting to the data is off).", limit)


def budget_cap(budget_seconds: float, steps_per_second: float, passes: int, n_prompts: int,
               batch_size: int, prefill_seconds: float = 0.0) -> int:
    """The most new tokens per answer that let `passes` generation passes over the prompts fit the budget, each pass
    first reading its prompts for `prefill_seconds`."""
    batches = max(math.ceil(n_prompts / batch_size), 1)
    decoding = max(budget_seconds - max(passes, 1) * prefill_seconds, 0.0)
    return int(decoding * steps_per_second / (max(passes, 1) * batches))


def _round_up(n: int) -> int:
    return -(-n // ROUND_TO) * ROUND_TO


def fit_answer_length(lengths: Sequence[int], floor: int = GenerationSettings.max_new_tokens, *, passes: int = 2,
                      batch_size: int = GenerationSettings.batch_size, budget_seconds: float | None = None,
                      steps_per_second: float | None = None, prefill_seconds: float = 0.0) -> AnswerLength:
    """Compare's `max_new_tokens` from the references' token lengths (answer + EOS), the floor and the budget (each
    pass reading its prompts for `prefill_seconds` first)."""
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
        cap = budget_cap(budget_seconds, steps_per_second, passes, n, batch_size, prefill_seconds)
    chosen = fitted if cap is None or cap >= fitted else max(cap, floor)
    if chosen < fitted:
        reading = f", after {prefill_seconds:.0f} s a pass reading the prompts" if prefill_seconds >= 0.5 else ""
        budget = (f"the {_duration(budget_seconds)} budget for {passes} passes at {steps_per_second:.1f} "
                  f"decoding steps/s{reading}")
        reason += (f" ({fitted}); capped by {budget}" if chosen > floor else
                   f" ({fitted}); {budget} allows only {cap}, so the {floor}-token setting stays")
    longer = sum(length > chosen for length in lengths)
    return AnswerLength(chosen, f"answers up to {chosen} tokens: {reason}.", floor, fitted, cap, n, longer)


def loop_penalty(gen: GenerationSettings, limit: int) -> float:
    """The repetition penalty for answers of up to `limit` tokens: at least LOOP_PENALTY when they may run long and the
    loop guard is on, else the setting as it is."""
    if gen.repetition_penalty_auto and limit > LONG_ANSWER_TOKENS:
        return max(gen.repetition_penalty, LOOP_PENALTY)
    return gen.repetition_penalty


def sized(gen: GenerationSettings, length: AnswerLength) -> tuple[GenerationSettings, str]:
    """`gen` with the chosen answer length and its loop guard, and why, in one sentence."""
    penalty = loop_penalty(gen, length.max_new_tokens)
    reason = length.reason
    if penalty != gen.repetition_penalty:
        reason = (f"{reason.removesuffix('.')}; a repetition penalty of {penalty:g} keeps answers over "
                  f"{LONG_ANSWER_TOKENS} tokens out of loops (the loop guard).")
    return replace(gen, max_new_tokens=length.max_new_tokens, repetition_penalty=penalty), reason


def sized_to_references(gen: GenerationSettings, lengths: Sequence[int]) -> tuple[GenerationSettings, str]:
    """`gen` sized by Compare's rule to the references' token lengths, without a time budget, and why.

    For answers written one at a time, streamed and stoppable (the Chat, the free prompt boxes), and for the settings
    an export or the snapshot timeline answers with when no comparison says otherwise. With `max_new_tokens_auto` off
    the length stays as set; long answers get the loop guard either way.
    """
    fit = fit_answer_length(lengths, gen.max_new_tokens) if gen.max_new_tokens_auto else set_by_hand(gen.max_new_tokens)
    return sized(gen, fit)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"


def ran_into_limit(n_new_tokens: int, limit: int, ended_by: EndedBy) -> bool:
    """Whether an answer was cut by the token limit: it used every new token and neither EOS nor a stop ended it."""
    return ended_by is None and n_new_tokens >= limit


def repeats_itself(text: str) -> bool:
    """Whether an answer's end only repeats what it already wrote (most of its last word trigrams came before)."""
    words = _WORD.findall(_NUMBERING.sub("", text.lower()))
    trigrams = list(zip(words, words[1:], words[2:]))
    if len(trigrams) < LOOP_MIN_TRIGRAMS:
        return False
    first: dict[tuple[str, str, str], int] = {}
    for i, trigram in enumerate(trigrams):
        first.setdefault(trigram, i)
    window = min(LOOP_WINDOW, len(trigrams) // 2)
    tail = range(len(trigrams) - window, len(trigrams))
    return sum(first[trigrams[i]] < i for i in tail) >= LOOP_SHARE * window


@dataclass(frozen=True)
class CutCount:
    """How many answers ran into the limit instead of stopping, and how many of those were stuck in a loop."""

    cut: int
    total: int
    limit: int
    looped: int = 0

    @property
    def label(self) -> str:
        """The mark on a cut answer in the table."""
        return cut_label(self.limit)

    def sentence(self, who: str) -> str:
        """One line for the headline, e.g. '45 of 48 tuned answers were cut at 12 tokens, 30 of them stuck in a loop.'"""
        were = "was" if self.cut == 1 else "were"
        return f"{self.cut} of {self.total} {who} answers {were} cut at {self.limit} tokens{self.loop_clause()}."

    def loop_clause(self) -> str:
        """', 3 of them stuck in a loop' ('' when none was)."""
        if not self.looped:
            return ""
        if self.looped == self.cut:
            return f", {LOOPING}" if self.cut == 1 else f", all of them {LOOPING}"
        return f", {self.looped} of them {LOOPING}"


def cut_label(limit: int, looped: bool = False) -> str:
    """The table's mark on an answer that ran into the limit ('..., stuck in a loop' when it was repeating itself)."""
    return f"cut at {limit} tokens" + (f", {LOOPING}" if looped else "")


def limit_ending(text: str) -> str:
    """How an answer that used every new token ended: 'ran to the token limit' (', stuck in a loop' when looping)."""
    return "ran to the token limit" + (f", {LOOPING}" if repeats_itself(text) else "")


def count_cut(answers: Iterable[tuple[int, EndedBy]], limit: int, texts: Iterable[str] = ()) -> CutCount:
    """Count the answers, given as (new tokens, what ended them), that ran into the limit; with their `texts`, also
    those of them stuck in a loop."""
    flags = [ran_into_limit(n, limit, ended) for n, ended in answers]
    return CutCount(sum(flags), len(flags), limit, _looped(flags, texts))


def recorded_cuts(flags: Sequence[bool | None], texts: Sequence[str], limit: int | None) -> CutCount | None:
    """The CutCount of saved answers from their per-answer cut flags and texts; None when any flag or the limit was not
    recorded (files written before either)."""
    if not flags or any(flag is None for flag in flags) or limit is None:
        return None
    return CutCount(sum(map(bool, flags)), len(flags), limit, _looped(flags, texts))


def _looped(flags: Iterable[bool | None], texts: Iterable[str]) -> int:
    return sum(bool(cut) and repeats_itself(text) for cut, text in zip(flags, texts))
