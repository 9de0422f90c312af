"""Before / after: the same prompts answered with the adapter off (base) and on (tuned), scored against references.

Both answer under one length limit (`fit_length`): with `max_new_tokens_auto` the held-out references size it
(`lengths.fit_answer_length`), capped so base + tuned fit the time budget at the decoding rate measured here and now
(`decoding_rate`: a short timed generate, only when the references do not fit the setting anyway, so the built-in
word tasks pay nothing and keep their answers). Machines differ by more than a constant could cover (a laptop, a
Space, a GPU), so the rate is measured, not assumed; the reason saved with the comparison names it.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from studio.data.formatting import prompt_ids
from studio.errors import StudioError
from studio.evaluate.chat import ask_both
from studio.evaluate.comparison import Comparison, ComparisonRow, row_cuts
from studio.evaluate.generation import (
    Answer,
    GenerationStopped,
    end_of_sequence_ids,
    eval_mode,
    generate_answers,
    generation_kwargs,
    plan_batches,
)
from studio.evaluate.lengths import AnswerLength, fit_answer_length, reference_lengths, set_by_hand
from studio.evaluate.prefill import batch_plan, reader, tokens_read
from studio.evaluate.scoring import score
from studio.evaluate.shared_loss import SharedLoss
from studio.evaluate.sharing import using
from studio.evaluate.significance import bootstrap_record, paired_bootstrap, win_tie_loss
from studio.examples import Example
from studio.settings import GenerationSettings


class NothingCompared(GenerationStopped):
    """Compare was stopped before both models had answered any example (nothing to score or save)."""

    def __init__(self, total: int) -> None:
        StudioError.__init__(self, f"Compare was stopped before both models had answered any of the {total} examples, "
                                   "so nothing was scored or saved.")
        self.answers = [None] * total


class _Stop(Exception):
    """Internal: the stop flag was seen between two batches."""


# Decoding steps timed for the rate: enough to average a step's jitter, a second or two on a CPU.
RATE_STEPS = 8


def decoding_rate(model: Any, tokenizer: Any, batch_size: int, steps: int = RATE_STEPS) -> float:
    """Greedy decoding steps per second of a full batch on this machine (adapter on, under the model's lock).

    A batch of one short prompt, timed at 1 and at 1 + `steps` new tokens, so the prompt's prefill cancels out; an
    untimed first call warms the kernels up. A step on a CPU costs about the same whatever the context's length
    (reading the weights and the output head dominates), so the short prompt stands for the real ones.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.tensor([prompt_ids(tokenizer, "Hello")] * max(batch_size, 1), dtype=torch.long, device=model.device)
    kwargs = generation_kwargs(GenerationSettings(), pad)

    def timed(n: int) -> float:
        start = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **{**kwargs, "max_new_tokens": n},
                       min_new_tokens=n)  # no early EOS: every step is timed
        return time.perf_counter() - start

    with using(model, adapter=True), torch.inference_mode(), eval_mode(model):
        timed(1)
        one, more = timed(1), timed(1 + steps)
    return steps / max(more - one, 1e-6)


# Rows of the longest prompt a forward pass reads to time the prefill: a second or two on a CPU.
PREFILL_ROWS = 4


def prefill_seconds(model: Any, tokenizer: Any, prompts: list[str], batch_size: int, num_beams: int = 1) -> float:
    """Seconds one generation pass spends reading its prompts on this machine (adapter on, under the model's lock).

    The prompt tokens its batches read, as `plan_batches` groups them and each batch reads them (`prefill`: the plain
    batch reads its longest prompt in every row; a plan reads a shared prefix once and each length group padded to its
    own longest), at the rate a forward pass reads `PREFILL_ROWS` copies of the longest prompt.
    """
    rows = [prompt_ids(tokenizer, p) for p in prompts]
    if not rows:
        return 0.0
    read = prompt_tokens_read(model, rows, batch_size, num_beams)
    longest = prompts[max(range(len(prompts)), key=lambda i: len(rows[i]))]
    return read / prefill_rate(model, tokenizer, longest, PREFILL_ROWS, adapter=True)


def prompt_tokens_read(model: Any, rows: Sequence[list[int]], batch_size: int, num_beams: int = 1) -> int:
    """Prompt tokens a generation pass over these prompts reads, batched and planned as `generate_answers` reads."""
    return sum(tokens_read(batch_plan(model, [rows[i] for i in b], num_beams))
               for b in plan_batches([len(r) for r in rows], batch_size))


def prefill_rate(model: Any, tokenizer: Any, prompt: str, rows: int = 2, adapter: bool = False) -> float:
    """Prompt tokens per second a forward pass reads on this machine (`rows` copies of `prompt`, under the model's
    lock), without the logits generation's prefill leaves out (all but each row's last)."""
    ids = torch.tensor([prompt_ids(tokenizer, prompt)] * rows, dtype=torch.long, device=model.device)
    with using(model, adapter=adapter), torch.inference_mode(), eval_mode(model):
        start = time.perf_counter()
        _read(model, ids)
        seconds = time.perf_counter() - start
    return ids.numel() / max(seconds, 1e-6)


def _read(model: Any, ids: torch.Tensor) -> None:
    # The decoder alone where it can be reached, as generation's prefill reads: the head at every position would
    # triple the time.
    reader(model)(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)


def fit_length(model: Any, tokenizer: Any, template: Any, examples: list[Example], gen: GenerationSettings,
               passes: int = 2) -> AnswerLength:
    """Compare's answer length for these examples and why: `gen.max_new_tokens` as set, or fitted to the data."""
    floor = gen.max_new_tokens
    if not gen.max_new_tokens_auto:
        return set_by_hand(floor)
    lengths = reference_lengths(tokenizer, template, examples)
    fit = fit_answer_length(lengths, floor, passes=passes, batch_size=gen.batch_size)
    if fit.max_new_tokens == floor:  # the setting covers the references: no budget to check, no rate to measure
        return fit
    rate = decoding_rate(model, tokenizer, min(gen.batch_size, len(examples)))
    reading = prefill_seconds(model, tokenizer, [template.prompt(e) for e in examples], gen.batch_size, gen.num_beams)
    return fit_answer_length(lengths, floor, passes=passes, batch_size=gen.batch_size,
                             budget_seconds=gen.answer_budget_seconds, steps_per_second=rate,
                             prefill_seconds=reading)


def _answer_batches(model: Any, tokenizer: Any, prompts: list[str], gen: GenerationSettings,
                    stops: tuple[str, ...], progress: Callable[[str, int, int], None] | None,
                    should_stop: Callable[[], bool] | None,
                    loss: SharedLoss | None = None) -> tuple[dict[int, Answer], dict[int, Answer], dict]:
    """Base then tuned answers for each batch in turn, until done or stopped: ({index: base}, {index: tuned}, timing):
    timing holds each pass's seconds ("base", "tuned") and decoding steps ("base_steps", "tuned_steps"). `loss`
    scores the references on each batch's prompt cache as it goes; its seconds are not counted as answering's."""
    base: dict[int, Answer] = {}
    tuned: dict[int, Answer] = {}
    timing = {"base": 0.0, "tuned": 0.0, "base_steps": 0, "tuned_steps": 0}
    lengths = [len(prompt_ids(tokenizer, p)) for p in prompts]
    try:
        for batch in plan_batches(lengths, gen.batch_size):
            for label, answers, adapter in (("base", base, False), ("tuned", tuned, True)):
                if should_stop is not None and should_stop():
                    raise _Stop
                start, scoring = time.perf_counter(), loss.seconds[label] if loss is not None else 0.0
                with using(model, adapter=adapter):  # the adapter state is ours alone while generating
                    got = generate_answers(model, tokenizer, [prompts[i] for i in batch], gen, stop_strings=stops,
                                           on_cache=loss.reader(label, batch) if loss is not None else None)
                scoring = (loss.seconds[label] if loss is not None else 0.0) - scoring
                timing[label] += time.perf_counter() - start - scoring
                # A batch decodes until its last answer ends: as many steps as its longest answer's tokens.
                timing[f"{label}_steps"] += max((a.n_tokens for a in got), default=0)
                answers.update(zip(batch, got))
                if progress is not None:
                    progress(label, len(answers), len(prompts))
    except _Stop:
        pass
    return base, tuned, timing


def compare(model: Any, tokenizer: Any, template: Any, examples: list[Example], gen: GenerationSettings,
            progress: Callable[[str, int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None, loss: SharedLoss | None = None) -> Comparison:
    """Answer the examples with the adapter off (base) and on (tuned), cut by the same stops, and score both.

    Both models answer a batch before the next batch starts, and `should_stop()` is checked before each model's
    turn: a stop keeps every example both models finished, and the result is `partial` (scored on those rows,
    `planned` saying how many were meant). NothingCompared when the stop came before any was finished. `loss`, when
    given, scores the references on each batch's prompt cache as the batches are answered (`shared_loss`).
    """
    prompts = [template.prompt(ex) for ex in examples]
    stops = tuple(template.stop_strings)
    base, tuned, timing = _answer_batches(model, tokenizer, prompts, gen, stops, progress, should_stop, loss)
    done = sorted(set(base) & set(tuned))
    if not done:
        raise NothingCompared(len(examples))
    kept = [examples[i] for i in done]
    return _scored(kept, [base[i] for i in done], [tuned[i] for i in done], gen, timing, template, stops,
                   tokenizer.convert_ids_to_tokens(end_of_sequence_ids(model, tokenizer)), len(examples))


def _scored(examples: list[Example], base: list[Answer], tuned: list[Answer], gen: GenerationSettings,
            timing: dict, template: Any, stops: tuple[str, ...], eos_tokens: list[str], planned: int) -> Comparison:
    """The Comparison of answered examples: per-row and corpus scores, intervals, win/tie/loss."""
    references = [ex.output for ex in examples]
    base_text, tuned_text = [a.text for a in base], [a.text for a in tuned]
    base_scores, base_each = score(references, base_text)
    tuned_scores, tuned_each = score(references, tuned_text)
    rows = [
        ComparisonRow(
            instruction=ex.instruction, input=ex.input, reference=ex.output, base=b.text, tuned=t.text,
            base_bleu=bs.bleu, tuned_bleu=ts.bleu, base_chrf=bs.chrf, tuned_chrf=ts.chrf,
            base_exact=bs.exact, tuned_exact=ts.exact, base_raw=b.raw, tuned_raw=t.raw,
            base_rouge_l=bs.rouge_l, tuned_rouge_l=ts.rouge_l, **row_cuts(b, t, gen.max_new_tokens),
        )
        for ex, b, t, bs, ts in zip(examples, base, tuned, base_each, tuned_each)
    ]
    return Comparison(
        rows=rows, base=base_scores, tuned=tuned_scores, generation=dataclasses.asdict(gen),
        base_seconds=timing["base"], tuned_seconds=timing["tuned"], template=str(template.name),
        stop_strings=list(stops), eos_tokens=eos_tokens,
        changes=paired_bootstrap(references, base_text, tuned_text, base_each, tuned_each),
        tally=win_tie_loss([s.bleu for s in base_each], [s.bleu for s in tuned_each]), bootstrap=bootstrap_record(),
        partial=len(examples) < planned, planned=planned, answer_length=gen.max_new_tokens,
        decoding_steps={"base": timing["base_steps"], "tuned": timing["tuned_steps"]},
    )


def answer_both(model: Any, tokenizer: Any, template: Any, instruction: str, input: str,
                gen: GenerationSettings) -> tuple[str, str]:
    """The base and the tuned answer to one free-form instruction: the streaming `chat.ask_both`, read to its end."""
    last = {who: reply.text for who, reply in ask_both(model, tokenizer, template, instruction, input, gen)}
    return last["base"], last["tuned"]
