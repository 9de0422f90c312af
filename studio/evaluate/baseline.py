"""Could prompting alone do it? The base model (adapter off) answering the held-out prompts with k training examples
in front of each one (k-shot), cut by Compare's stop rule at Compare's answer length.

The prompt: each shot rendered by the run's template as a whole training example (prompt + answer), a separator
(a blank line for plain templates, a newline after a chat turn's end marker), then the held-out prompt exactly as
Compare feeds it. A BOS the template writes as text is kept once, at the very start, and the whole is tokenised by
`generation.generate_answers` through `formatting.prompt_ids`, as every prompt is. With no shots the prompt IS
Compare's prompt, so the answers are the base answers exactly.

The shots: a seeded sample among the shorter half of the training examples (short shots leave room in the
context), the same shots in the same order for every prompt. k (`choose_k`, pure) is the largest number up to the
setting for which the longest k-shot prompt plus the answer fits the context and the pass fits its time budget at
the rates measured on this machine; 0 means the baseline is skipped, with the reason. The context is the model's own
(its positions, capped at `MAX_CONTEXT`), not the run's `data.max_length`: that truncates training examples, while
the baseline only reads, so on long answers a training-length limit would leave no room for even one shot; the
time budget, not the cap, is what keeps k small on a slow machine.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from studio.data.formatting import prompt_ids
from studio.evaluate.before_after import decoding_rate, prefill_rate, prompt_tokens_read
from studio.evaluate.generation import Answer, GenerationStopped, generate_answers, plan_batches
from studio.evaluate.sharing import using
from studio.examples import Example
from studio.settings import GenerationSettings

POOL = 200  # training examples measured for shots at most: tokenising a large training set would cost seconds
# Tokens a k-shot prompt plus its answer may take at most, however long the model's context: prefill time and
# memory grow with the prompt, so the cap keeps one pass bounded where the model reads tens of thousands of tokens.
MAX_CONTEXT = 2048
SHOT_SEED = 0
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ShotChoice:
    """How many training examples go before each prompt (`k`, 0: skipped), which ones, and why in one sentence."""

    k: int
    shots: tuple[int, ...]  # indices into the training examples, in prompt order
    reason: str
    context_limit: int = 0
    estimated_seconds: float | None = None

    @property
    def label(self) -> str:
        """'3-shot' (or 'not run')."""
        return f"{self.k}-shot" if self.k else "not run"


def separator(template: Any) -> str:
    """What goes between two shots: a newline after a chat turn, a blank line between plain examples."""
    return "\n" if template.multi_turn else "\n\n"


def _without_bos(text: str, bos: str | None) -> str:
    return text[len(bos):] if bos and text.startswith(bos) else text


def shot_text(template: Any, example: Example) -> str:
    """One training example as a shot: the template's prompt and answer, as trained (EOS aside), then the separator."""
    rendered = template.render(example)
    return (rendered.prompt + rendered.completion).rstrip("\n") + separator(template)


def few_shot_prompt(template: Any, shots: Sequence[Example], example: Example, bos: str | None = None) -> str:
    """The shots, then the held-out prompt as Compare feeds it; a BOS written as text (`bos`) only at the start."""
    pieces = [shot_text(template, s) for s in shots] + [template.prompt(example)]
    return pieces[0] + "".join(_without_bos(p, bos) for p in pieces[1:])


def context_limit(model: Any, cap: int = MAX_CONTEXT) -> int:
    """Tokens a k-shot prompt plus its answer may take: the model's positions, at most `cap` (all of it without
    a recorded context)."""
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return min(cap, positions) if positions else cap


def pick_shots(tokenizer: Any, template: Any, train: Sequence[Example], n: int, seed: int = SHOT_SEED) -> list[int]:
    """Up to n training indices: a seeded sample among the shorter half (by shot tokens), the same on every call."""
    if n <= 0 or not train:
        return []
    rng = random.Random(seed)
    pool = sorted(rng.sample(range(len(train)), min(POOL, len(train))))
    pool = [i for i in pool if train[i].output.strip()]
    lengths = {i: len(prompt_ids(tokenizer, shot_text(template, train[i]))) for i in pool}
    median = sorted(lengths.values())[(len(lengths) - 1) // 2] if lengths else 0
    short = [i for i in pool if lengths[i] <= median]
    return rng.sample(short, min(n, len(short)))


def estimate_seconds(n_prompts: int, batch_size: int, tokens_read: int, answer_tokens: int,
                     steps_per_second: float, prefill_per_second: float) -> float:
    """Time of one pass: every batch decodes to the limit (the base model rarely stops), plus reading the prompts.

    `tokens_read`: the prompt tokens the pass's forward passes read (`prompt_tokens_read`: the shots every prompt
    shares once, the rest by length group; the plain batch reads its longest prompt in every row).
    """
    batches = max(math.ceil(n_prompts / max(batch_size, 1)), 1)
    return batches * answer_tokens / steps_per_second + tokens_read / prefill_per_second


def choose_k(longest: Sequence[int], answer_tokens: int, limit: int, n_prompts: int, batch_size: int,
             budget_seconds: float | None = None, steps_per_second: float | None = None,
             prefill_per_second: float | None = None, reading: Sequence[int] | None = None,
             ) -> tuple[int, str, float | None]:
    """(k, reason, estimated seconds): the most shots that fit the context and the budget; 0 with why when none do.

    `longest[k]` is the longest held-out prompt with k shots in front, in tokens (`longest[0]`: none), so
    `len(longest) - 1` is the most shots on offer; `reading[k]` the tokens that pass reads (default: the longest in
    every row). Without both rates, no time is checked.
    """
    timed = budget_seconds is not None and bool(steps_per_second) and bool(prefill_per_second)
    read = list(reading) if reading is not None else [n_prompts * n for n in longest]

    def seconds(k: int) -> float | None:
        return estimate_seconds(n_prompts, batch_size, read[k], answer_tokens, steps_per_second,
                                prefill_per_second) if timed else None

    most = len(longest) - 1
    fits = [k for k in range(1, most + 1) if longest[k] + answer_tokens <= limit]
    k = max(fits, default=0)
    why = _context_reason(k, most, longest, answer_tokens, limit)
    while timed and k > 0 and seconds(k) > budget_seconds:
        k -= 1
    if timed and k < max(fits, default=0):
        why = (f"{k + 1} would take about {seconds(k + 1):.0f} s, over the {budget_seconds:g}-second budget "
               f"at the speed measured here")
    if k == 0:
        return 0, f"Prompting alone was not measured: {why}.", None
    return k, f"{k}-shot: {k} training example{'s' * (k > 1)} before each prompt ({why}).", seconds(k)


def _context_reason(k: int, most: int, longest: Sequence[int], answer_tokens: int, limit: int) -> str:
    if most == 0:
        return "there are no training examples to show"
    room = f"the {limit}-token context with room for a {answer_tokens}-token answer"
    if k == 0:
        return f"not even one training example fits before the prompts in {room}"
    if k == most:
        return f"the most set; the longest prompt is {longest[k]} tokens, within {room}"
    return f"{k + 1} would not fit {room}"


def base_decoding_rate(result: Any) -> float | None:
    """Decoding steps per second of Compare's base pass, from its recorded steps and seconds; None when unknown.

    The rate comes at no extra cost, where a timing run of its own costs seconds (ten with a batch of 48 on two
    cores). It is a little low, since the pass's short prefill is counted too, which errs toward fewer shots.
    """
    steps = result.decoding_steps.get("base")
    return steps / result.base_seconds if steps and result.base_seconds > 0 else None


def answer_with_shots(model: Any, tokenizer: Any, template: Any, shots: Sequence[Example],
                      examples: Sequence[Example], gen: GenerationSettings, progress: Progress | None = None,
                      should_stop: Callable[[], bool] | None = None, label: str = "baseline") -> list[Answer]:
    """The base model's answers to the k-shot prompts, batch by batch under the model's lock (adapter off).

    Cut by the template's stop strings and EOS at `gen.max_new_tokens`, as Compare's; with no shots they are
    Compare's base answers. GenerationStopped (the answers so far) when `should_stop()` turns true between batches.
    """
    bos = getattr(tokenizer, "bos_token", None)
    prompts = [few_shot_prompt(template, shots, ex, bos) for ex in examples]
    stops = tuple(template.stop_strings)
    answers: list[Answer | None] = [None] * len(prompts)
    for batch in plan_batches([len(prompt_ids(tokenizer, p)) for p in prompts], gen.batch_size):
        if should_stop is not None and should_stop():
            raise GenerationStopped([a.text if a else None for a in answers])
        with using(model, adapter=False):  # between batches a chat turn may have the model
            got = generate_answers(model, tokenizer, [prompts[i] for i in batch], gen, stop_strings=stops)
        for i, answer in zip(batch, got):
            answers[i] = answer
        if progress is not None:
            progress(label, sum(a is not None for a in answers), len(prompts))
    return [a or Answer("", "") for a in answers]


@dataclass
class BaselineAnswers:
    """The baseline's answers (aligned with the examples; empty when skipped), the shot choice and its time."""

    answers: list[Answer]
    choice: ShotChoice
    seconds: float = 0.0


def run_baseline(model: Any, tokenizer: Any, template: Any, train: Sequence[Example], examples: Sequence[Example],
                 gen: GenerationSettings, progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None, steps_per_second: float | None = None,
                 timed: bool = True) -> BaselineAnswers:
    """Choose k (the setting, the model's context, the budget) and answer the examples k-shot; skipped (k=0) with why.

    `steps_per_second`: the decoding rate measured for Compare, if any (else measured here when `timed`).
    """
    if gen.baseline_shots <= 0:
        return BaselineAnswers([], ShotChoice(0, (), "Prompting alone was not measured: it is turned off "
                                                     "(generation.baseline_shots is 0)."))
    chosen = pick_shots(tokenizer, template, train, gen.baseline_shots)
    bos = getattr(tokenizer, "bos_token", None)
    rows = [[prompt_ids(tokenizer, few_shot_prompt(template, [train[i] for i in chosen[:k]], ex, bos))
             for ex in examples] for k in range(len(chosen) + 1)]
    longest = [max(map(len, r)) for r in rows]
    limit = context_limit(model)
    rates: dict[str, float] = {}
    if timed and len(chosen) and longest[1] + gen.max_new_tokens <= limit:
        rates["steps_per_second"] = steps_per_second or decoding_rate(model, tokenizer,
                                                                      min(gen.batch_size, len(examples)))
        sample = few_shot_prompt(template, [train[i] for i in chosen], examples[0], bos)
        rates["prefill_per_second"] = prefill_rate(model, tokenizer, sample)
    reading = [prompt_tokens_read(model, r, gen.batch_size, gen.num_beams) for r in rows] if rates else None
    k, reason, estimate = choose_k(longest, gen.max_new_tokens, limit, len(examples), gen.batch_size,
                                   gen.baseline_budget_seconds if rates else None, reading=reading, **rates)
    choice = ShotChoice(k, tuple(chosen[:k]), reason, limit, estimate)
    if k == 0:
        return BaselineAnswers([], choice)
    start = time.perf_counter()
    answers = answer_with_shots(model, tokenizer, template, [train[i] for i in choice.shots], examples, gen,
                                progress, should_stop, label=f"baseline ({choice.label})")
    return BaselineAnswers(answers, choice, time.perf_counter() - start)
