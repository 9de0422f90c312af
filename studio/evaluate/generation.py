"""Batched generation: answer prompts with a model, cut at the template's stop strings, stoppable between batches.

Batched greedy answers equal one-prompt-at-a-time `model.generate` answers. Measured on this CPU: left padding
alone changed no token (Gemma 3 270M, 16 Alpaca prompts of 49-54 tokens x 24 new tokens, batch 8, padded in any
order; tiny test model, 200 prompts), so padding is safe. Still, `plan_batches` first fills batches with prompts
of exactly the same token length (no padding at all, so nothing depends on how a kernel treats masked
positions) and batches the leftovers sorted by length, so they pad little. A batch whose prompts still differ much
in length, or share a long prefix (the baseline's shots), reads the prefix once and the rest in length groups, and
goes on from their caches laid side by side (`prefill`): the same answers, without reading the longest prompt, or
the same shots, in every row.

How answers end, the same rule for base and tuned (`StopRule`): at EOS, or at the first of the template's stop
strings. A stop string that is one special token (`<end_of_turn>`, `<|im_end|>` where the tokenizer has it) is
matched on token ids, because decoding for the answer text drops special tokens; any other one is matched on the
decoded text, which may start in the prompt's last characters (a prompt ending in a newline followed by "### "
matches "\n### "). A batch ends when every row has reached EOS or a stop; a row that reached a stop string earlier
keeps generating until then, so its raw continuation (`Answer.raw`, special tokens shown) tells what it would have
gone on to write, at no extra cost: the batch runs that long anyway.

What ended an answer (`Answer.ended_by`, `Answer.n_tokens`) is decided at the row's FIRST stop or EOS, not where
its batch ended: "stop" (a stop string or special-token stop came first), "eos", or None when neither came and the
answer ran into `max_new_tokens` (`lengths.ran_into_limit`, the "cut at N tokens" mark in Compare).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from studio.data.formatting import prompt_ids
from studio.errors import StudioError
from studio.evaluate.lengths import EndedBy
from studio.evaluate.prefill import batch_plan, cache_keyword, can_prefill, layout, prefilled_cache
from studio.model.threads import ThreadBalancer, balancing
from studio.settings import GenerationSettings

Progress = Callable[[int, int], None]


class CacheUser(Protocol):
    """Reads each batch's prompt cache after `generate` has answered it (Compare's answer loss, `shared_loss`)."""

    def wants(self, rows: Sequence[int]) -> bool:
        """Whether it would read the cache of a batch of these prompts (positions in the call)."""

    def __call__(self, model: Any, cache: Any, batch: dict[str, torch.Tensor], rows: Sequence[int]) -> None:
        """Read `cache` (None when the batch had none to hand over) of the prompt `batch` of these prompts."""


class GenerationStopped(StudioError):
    """The user stopped generation; `answers` holds what was finished (None where not yet answered)."""

    def __init__(self, answers: list[str | None]):
        done = sum(a is not None for a in answers)
        super().__init__(f"Generation was stopped after {done} of {len(answers)} answers.")
        self.answers = answers


def generation_kwargs(gen: GenerationSettings, pad_token_id: int) -> dict[str, Any]:
    """GenerationSettings -> `model.generate` keyword arguments (the one place this mapping lives)."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": gen.max_new_tokens, "num_beams": gen.num_beams, "do_sample": gen.do_sample,
        "repetition_penalty": gen.repetition_penalty, "pad_token_id": pad_token_id,
    }
    if gen.do_sample:
        kwargs.update(temperature=gen.temperature, top_p=gen.top_p, top_k=None)
    else:
        # Unset the model's own sampling defaults so greedy/beam decoding does not warn about them.
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if gen.num_beams > 1:
        kwargs["early_stopping"] = True
    return kwargs


@dataclass(frozen=True)
class Answer:
    """One generated answer: `text` as scored (cut at EOS or the first stop), `raw` all the model wrote.

    `n_tokens`: new tokens up to and including the one that ended the answer (all of them when nothing did);
    `ended_by`: "eos", "stop", or None when the answer ran into the token limit.
    """

    text: str
    raw: str
    n_tokens: int = 0
    ended_by: EndedBy = None


@dataclass(frozen=True)
class StopRule:
    """Where answers end: `texts` matched on decoded text, `token_ids` (special-token stops) and `eos_ids` on ids."""

    texts: tuple[str, ...]
    token_ids: frozenset[int]
    eos_ids: frozenset[int]

    @property
    def needs_criterion(self) -> bool:
        """Whether generation must watch for stops itself (EOS alone is handled by `generate`)."""
        return bool(self.texts or self.token_ids)


def end_of_sequence_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token id that ends generation: the model's generation config EOS (one or several) and the tokenizer's."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    return sorted({i for i in [*ids, tokenizer.eos_token_id] if i is not None})


def _special_token_id(tokenizer: Any, text: str) -> int | None:
    # A special token is one id that decodes to `text` but vanishes when special tokens are skipped.
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1 or tokenizer.decode(ids, skip_special_tokens=True) != "":
        return None
    return ids[0] if tokenizer.decode(ids, skip_special_tokens=False) == text else None


def stop_rule(model: Any, tokenizer: Any, stop_strings: tuple[str, ...]) -> StopRule:
    """The stop strings split into special-token stops (ids) and text stops, plus the EOS ids."""
    token_ids = {s: _special_token_id(tokenizer, s) for s in stop_strings if s}
    return StopRule(texts=tuple(s for s, i in token_ids.items() if i is None),
                    token_ids=frozenset(i for i in token_ids.values() if i is not None),
                    eos_ids=frozenset(end_of_sequence_ids(model, tokenizer)))


def find_stop(text: str, stop_strings: tuple[str, ...], context: str = "") -> int | None:
    """Where in `text` the first stop string starts (0 when it began in `context`, the prompt's end), else None."""
    full, found = context + text, []
    for stop in filter(None, stop_strings):
        # Only matches that end inside `text` count: the prompt alone never ends an answer.
        at = full.find(stop, max(0, len(context) - len(stop) + 1))
        if at >= 0:
            found.append(max(0, at - len(context)))
    return min(found, default=None)


def cut_at_stop(text: str, stop_strings: tuple[str, ...], context: str = "") -> str:
    """Text up to the first stop string, stripped."""
    at = find_stop(text, stop_strings, context)
    return (text if at is None else text[:at]).strip()


def stop_context(prompt: str, rule: StopRule) -> str:
    """The prompt's last characters a text stop may start in (one fewer than the longest stop string)."""
    longest = max(map(len, rule.texts), default=1)
    return prompt[-(longest - 1):] if longest > 1 else ""


def _text_stop_end(tokenizer: Any, ids: list[int], texts: tuple[str, ...], context: str) -> int:
    """How many of `ids` it took for a text stop to appear (the caller knows one appears in all of them)."""
    # Bisect on the prefix length (a stop seen in a prefix stays in every longer one): a few decodes, not one per
    # token, so a 4096-token answer costs the same as a short one.
    low, high = 1, len(ids)
    while low < high:
        mid = (low + high) // 2
        if find_stop(tokenizer.decode(ids[:mid], skip_special_tokens=True), texts, context) is None:
            low = mid + 1
        else:
            high = mid
    return high


def _ending(tokenizer: Any, ids: list[int], rule: StopRule, context: str, eos_at: int, end_at: int,
            decoded: str) -> tuple[int, EndedBy]:
    """(new tokens used, what ended the answer), decided at the row's first stop or EOS."""
    if rule.texts and find_stop(decoded, rule.texts, context) is not None:
        return _text_stop_end(tokenizer, ids[:end_at], rule.texts, context), "stop"
    if end_at < eos_at:
        return end_at + 1, "stop"
    if eos_at < len(ids):
        return eos_at + 1, "eos"
    return len(ids), None


def cut_answer(tokenizer: Any, ids: list[int], rule: StopRule, context: str = "") -> Answer:
    """One row of new token ids as an Answer: text cut at EOS or the first stop, raw up to and including EOS."""
    eos_at = next((i for i, t in enumerate(ids) if t in rule.eos_ids), len(ids))
    end_at = next((i for i, t in enumerate(ids[:eos_at]) if t in rule.token_ids), eos_at)
    decoded = tokenizer.decode(ids[:end_at], skip_special_tokens=True)
    n_tokens, ended_by = _ending(tokenizer, ids, rule, context, eos_at, end_at, decoded)
    # Rows end at EOS (generate pads after it); nothing but EOS ends a row early, so nothing else is padding.
    return Answer(text=cut_at_stop(decoded, rule.texts, context),
                  raw=tokenizer.decode(ids[:eos_at + 1], skip_special_tokens=False),
                  n_tokens=n_tokens, ended_by=ended_by)


class _StopWhenAllEnded(StoppingCriteria):
    """Ends the batch once every row has written EOS or a stop (ids or text); until then no row is stopped."""

    def __init__(self, tokenizer: Any, rule: StopRule, contexts: list[str], prompt_width: int):
        self.tokenizer, self.rule, self.contexts, self.prompt_width = tokenizer, rule, contexts, prompt_width
        self.ended = [False] * len(contexts)

    def _has_ended(self, row: list[int], context: str) -> bool:
        ends = self.rule.eos_ids | self.rule.token_ids
        if any(t in ends for t in row):
            return True
        return find_stop(self.tokenizer.decode(row, skip_special_tokens=True), self.rule.texts, context) is not None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        for r, row in enumerate(input_ids[:, self.prompt_width:].tolist()):
            self.ended[r] = self.ended[r] or self._has_ended(row, self.contexts[r])
        return torch.full((len(self.ended),), all(self.ended), dtype=torch.bool, device=input_ids.device)


def plan_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches: full exact-length buckets first, the rest sorted by length."""
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    batches, leftovers = [], []
    for n in sorted(by_length):
        group = by_length[n]
        full = len(group) - len(group) % batch_size
        batches += [group[i:i + batch_size] for i in range(0, full, batch_size)]
        leftovers += group[full:]
    batches += [leftovers[i:i + batch_size] for i in range(0, len(leftovers), batch_size)]
    return batches


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """The model in eval mode for the block, its own mode restored after."""
    # Training may leave dropout on; answers must be deterministic, and the caller's mode comes back after.
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class _RebalanceThreads(StoppingCriteria):
    """Never stops anything: every `every` new tokens it re-checks how many cores other processes leave idle."""

    def __init__(self, balancer: ThreadBalancer, every: int = 8):
        self.balancer, self.every, self.calls = balancer, every, 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.calls += 1
        if self.calls % self.every == 0:
            self.balancer.check()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


@contextlib.contextmanager
def _cpu_threads(model: Any) -> Iterator[ThreadBalancer | None]:
    # By default the caller's thread count stays as it is (pinned: answers are bit-reproducible). Only inside a
    # balanced policy (train.balance_threads, see studio.model.threads) does generation follow the cores other
    # processes leave idle: never more threads than the caller gave torch, and its count comes back afterwards.
    if model.device.type != "cpu" or not balancing():
        yield None
        return
    previous = torch.get_num_threads()
    balancer = ThreadBalancer(limit=previous)
    balancer.begin(sample_seconds=0.15)
    try:
        yield balancer
    finally:
        torch.set_num_threads(previous)


class _RowRepetitionPenalty(LogitsProcessor):
    """transformers' repetition penalty over each row's own tokens only: its left padding is not penalised.

    transformers penalises every id in `input_ids`, padding included; with the pad id set to EOS (many tokenizers
    have no pad token) that penalises ending, so an answer would depend on how long its batch-mates' prompts were.
    llama.cpp has no padding. Each pad position is read as the row's first real token, which is penalised anyway.
    """

    def __init__(self, penalty: float, pads: list[int]):
        self.penalty, self.pads = penalty, pads

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        ids = input_ids.clone()
        for r, n in enumerate(self.pads):
            if n:
                ids[r, :n] = ids[r, n]
        score = torch.gather(scores, 1, ids)
        score = torch.where(score < 0, score * self.penalty, score / self.penalty)
        return scores.scatter(1, ids, score)


def _generate_batch(model: Any, tokenizer: Any, rows: list[list[int]], contexts: list[str], kwargs: dict[str, Any],
                    rule: StopRule, balancer: ThreadBalancer | None = None,
                    reader: tuple[CacheUser, list[int]] | None = None) -> list[Answer]:
    """One batch's answers; `reader` (a CacheUser and the rows' positions in the call) reads its cache afterwards."""
    plan = batch_plan(model, rows, kwargs["num_beams"])
    batch = layout(rows, plan, kwargs["pad_token_id"], model.device)
    width = batch["input_ids"].shape[1]
    criteria = StoppingCriteriaList([_RebalanceThreads(balancer)] if balancer is not None else [])
    if rule.needs_criterion and kwargs["num_beams"] == 1:
        criteria.append(_StopWhenAllEnded(tokenizer, rule, contexts, width))
    if kwargs["repetition_penalty"] != 1.0:  # ours replaces transformers' own, which reads the padding too
        pads = batch["attention_mask"].argmax(dim=1).tolist()  # each row's first real token
        penalty = _RowRepetitionPenalty(kwargs["repetition_penalty"], pads)
        kwargs = {**kwargs, "repetition_penalty": 1.0, "logits_processor": LogitsProcessorList([penalty])}
    cache = None
    if not plan.plain:  # a shared prefix or prompts of unlike lengths: read once, or by group
        cache = prefilled_cache(model, batch["input_ids"], batch["attention_mask"], plan)
    elif reader is not None and reader[0].wants(reader[1]) and can_prefill(model, width, kwargs["num_beams"]):
        cache = DynamicCache(config=model.config)  # the one generate would make, kept to be read afterwards
    if cache is not None:
        kwargs = {**kwargs, cache_keyword(model): cache}
    out = model.generate(**batch, **kwargs, stopping_criteria=criteria or None)
    if reader is not None:
        reader[0](model, cache, batch, reader[1])
    return [cut_answer(tokenizer, row, rule, context) for row, context in zip(out[:, width:].tolist(), contexts)]


def generate_answers(model: Any, tokenizer: Any, prompts: list[str], gen: GenerationSettings,
                     progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                     stop_strings: tuple[str, ...] = (), on_cache: CacheUser | None = None) -> list[Answer]:
    """Answer each prompt (new text only, cut at EOS or the first stop, raw kept); GenerationStopped if stopped.

    `on_cache` reads each batch's prompt cache once the batch is answered (Compare scores the references on it).
    """
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs = generation_kwargs(gen, pad_id)
    rule = stop_rule(model, tokenizer, stop_strings)
    kwargs["eos_token_id"] = sorted(rule.eos_ids)  # EOS always stops, for base and tuned alike
    encoded = [prompt_ids(tokenizer, p) for p in prompts]  # exactly as training encodes them
    contexts = [stop_context(p, rule) for p in prompts]
    answers: list[Answer | None] = [None] * len(prompts)
    done = 0
    # fork_rng keeps the seed local: sampling here must not reseed a training run sharing the process.
    with torch.random.fork_rng(devices=[]), torch.inference_mode(), eval_mode(model), _cpu_threads(model) as threads:
        torch.manual_seed(gen.seed)
        for batch in plan_batches([len(e) for e in encoded], gen.batch_size):
            if should_stop is not None and should_stop():
                raise GenerationStopped([a.text if a else None for a in answers])
            results = _generate_batch(model, tokenizer, [encoded[i] for i in batch], [contexts[i] for i in batch],
                                      kwargs, rule, threads, (on_cache, batch) if on_cache is not None else None)
            for i, answer in zip(batch, results):
                answers[i] = answer
            done += len(batch)
            if progress is not None:
                progress(done, len(prompts))
    return [a or Answer("", "") for a in answers]


def generate(model: Any, tokenizer: Any, prompts: list[str], gen: GenerationSettings,
             progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
             stop_strings: tuple[str, ...] = ()) -> list[str]:
    """Answer each prompt (new text only, cut at EOS or the first stop string); raises GenerationStopped if stopped."""
    return [a.text for a in generate_answers(model, tokenizer, prompts, gen, progress, should_stop, stop_strings)]
