"""The answer loss read on generation's prompt cache: each held-out prompt read once, for the answer and the loss.

The answer loss reads prompt + reference answer with each model; Compare's generation reads the same prompt again
with the same weights before its first token. After `generate`, the batch's KV cache still holds every prompt
position (generation appends to it, never rewrites it), so the reference answer is scored on top of it: each row
reads its last prompt token and its answer's tokens but the last, and the head scores the answer's tokens, each
predicted from the tokens before it, as `answer_loss` scores them. Only the answers are read a second time: on
AlpacaEval's 43 held-out examples 2/5 of the tokens the loss read were prompt, on the word tasks 4/5.

Exact by construction, up to float rounding, where:
- the prompt generation reads is the training tokenisation's prompt, id for id (`reference_answers`);
- the cache is a `DynamicCache` that still holds all its positions (a sliding-window layer drops the oldest past its
  window; beams reorder rows), and each row's answer fits the window on top of the batch (`_room`).
A row where any of that fails is scored afterwards on its own (`answer_loss.batch_losses`), as before; so is every
row of a batch that answered without such a cache. That is with the model's own weights; with a bf16 copy
(`precision`, `auto` on a CPU that multiplies bf16 natively) the answers read on generation's fp32 prompt cache, cast,
so they agree with bf16 read afresh only as closely as bf16 agrees with fp32 (`bench owndata` prints the gap).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from studio.data.formatting import Features, prompt_ids, tokenize_dataset
from studio.evaluate.answer_loss import BATCH_SIZE, batch_losses, length_batches, record, row_losses
from studio.evaluate.answer_loss_record import AnswerLoss
from studio.evaluate.lengths import answer_tokens
from studio.evaluate.precision import ScoringWeights, precision_name, run_decoder, scoring_weights
from studio.evaluate.prefill import cache_keyword
from studio.evaluate.sharing import using
from studio.examples import Example
from studio.train.trainer import causal_parts

Progress = Callable[[str, int, int], None]


def reference_answers(features: Sequence[Features], prompts: Sequence[list[int]]) -> list[list[int] | None]:
    """Each example's scored answer tokens where its training tokens are `prompt` + answer, else None."""
    out: list[list[int] | None] = []
    for f, prompt in zip(features, prompts):
        n = answer_tokens(f)
        head, answer = f.input_ids[:len(f.input_ids) - n], f.input_ids[len(f.input_ids) - n:]
        out.append(answer if n and head and head == list(prompt) else None)
    return out


@dataclass
class SharedLoss:
    """The held-out answer loss gathered while Compare generates: per model, each example's summed loss and tokens."""

    features: list[Features]
    answers: list[list[int] | None]  # scored on generation's cache; None: on its own afterwards
    pad_id: int
    progress: Progress | None = None
    precision: str = "fp32"  # `studio.evaluate.precision`: fp32, bf16 or auto
    scores: dict[str, dict[int, tuple[float, int]]] = field(default_factory=lambda: {"base": {}, "tuned": {}})
    seconds: dict[str, float] = field(default_factory=lambda: {"base": 0.0, "tuned": 0.0})
    answered: dict[str, set[int]] = field(default_factory=lambda: {"base": set(), "tuned": set()})
    copy: ScoringWeights | None = None  # the weights' copy `precision` asks for, made once per Compare
    copied: bool = False  # whether it was asked for yet (None is an answer: the model's own weights)

    @classmethod
    def build(cls, tokenizer: Any, template: Any, examples: Sequence[Example], max_length: int,
              progress: Progress | None = None, precision: str = "fp32") -> SharedLoss:
        """Tokenise the examples as training does, and match each one's prompt to the one generation reads."""
        features = tokenize_dataset(tokenizer, template, examples, max_length)
        prompts = [prompt_ids(tokenizer, template.prompt(e)) for e in examples]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return cls(features, reference_answers(features, prompts), pad, progress, precision)

    def weights(self, model: Any, who: str) -> ScoringWeights | None:
        """The copy of the model's weights `precision` asks for (None: its own), made at the first read; the making
        counts as `who`'s answer-loss time."""
        if not self.copied:
            start = time.perf_counter()
            self.copy, self.copied = scoring_weights(model, self.precision), True
            self.seconds[who] += time.perf_counter() - start
        return self.copy

    def reader(self, who: str, indices: Sequence[int]) -> CacheReader:
        """What `generate_answers` calls with each batch's prompt cache, for these examples (its prompts, in order)."""
        return CacheReader(self, who, list(indices))

    def finish(self, model: Any) -> AnswerLoss:
        """Score on their own the examples both models answered that no cache scored, and make the record (planned:
        every example; NothingScored when neither answered any)."""
        done = sorted(self.answered["base"] & self.answered["tuned"])
        for who, adapter in (("base", False), ("tuned", True)):
            left = [i for i in done if i not in self.scores[who]]
            for batch in length_batches([len(self.features[i].input_ids) for i in left], BATCH_SIZE):
                rows = [left[b] for b in batch]
                start = time.perf_counter()
                with using(model, adapter=adapter):
                    sums, counts = batch_losses(model, [self.features[i] for i in rows], self.pad_id,
                                                self.weights(model, who))
                self.add(who, rows, list(zip(sums, counts)), time.perf_counter() - start)
        # An example one model scored before a stop and the other never answered is left out by `record`.
        return record(self.scores, self.seconds, len(self.features), precision_name(model, self.copy))

    def add(self, who: str, rows: list[int], got: list[tuple[float, int]], seconds: float) -> None:
        """Record `who`'s (summed loss, tokens) of these examples and the seconds they took; report progress."""
        self.scores[who].update(zip(rows, got))
        self.seconds[who] += seconds
        if self.progress is not None:
            self.progress(who, len(self.scores[who]), len(self.features))


@dataclass
class CacheReader:
    """One model's pass over one generation batch: scores the batch's answers on the cache it hands over."""

    loss: SharedLoss
    who: str
    indices: list[int]  # the example behind each prompt of the `generate_answers` call

    def wants(self, rows: Sequence[int]) -> bool:
        """Whether any of these prompts (positions in the call) has an answer to score on the cache."""
        return any(self.loss.answers[self.indices[r]] is not None for r in rows)

    def __call__(self, model: Any, cache: Any, batch: dict[str, torch.Tensor], rows: Sequence[int]) -> None:
        """Score the answers of the batch's rows (`rows`: their prompts' positions in the call) on `cache`, the
        batch's after `generate`; `batch` is the prompt batch `generate` read."""
        self.loss.answered[self.who].update(self.indices[p] for p in rows)
        room = _room(cache, batch["attention_mask"].shape[1])
        weights = self.loss.weights(model, self.who) if room else None
        keep = [(r, i) for r, i in enumerate(self.indices[p] for p in rows)
                if (answer := self.loss.answers[i]) is not None and len(answer) <= room]
        for part in length_batches([len(self.loss.answers[i]) for _, i in keep], BATCH_SIZE):
            start = time.perf_counter()
            chosen = [keep[p] for p in part]
            answers = [self.loss.answers[i] for _, i in chosen]
            sums = losses_on_cache(model, cache, batch, [r for r, _ in chosen], answers, weights)
            self.loss.add(self.who, [i for _, i in chosen], [(s, len(a)) for s, a in zip(sums, answers)],
                          time.perf_counter() - start)


def _room(cache: Any, width: int) -> int:
    """How many answer tokens a row can read on top of this `width`-token prompt cache (0: none, it cannot be used)."""
    if type(cache) is not DynamicCache or not cache.layers:
        return 0
    room = 1 << 30
    for layer in cache.layers:
        if type(layer) not in (DynamicLayer, DynamicSlidingWindowLayer) or getattr(layer, "keys", None) is None:
            return 0
        if layer.keys.shape[-2] < width - 1:
            return 0
        if type(layer) is DynamicSlidingWindowLayer:
            if layer.cumulative_length != layer.keys.shape[-2]:  # it has dropped its oldest positions
                return 0
            # Every key stays inside every query's window: the padding counts, as in the cache's own indices.
            room = min(room, layer.sliding_window - width)
    return max(room, 0)


def losses_on_cache(model: Any, cache: DynamicCache, batch: dict[str, torch.Tensor], rows: list[int],
                    answers: list[list[int]], weights: ScoringWeights | None = None) -> list[float]:
    """Summed cross-entropy of each row's answer tokens, read on top of its prompt in the batch's `cache`.

    `batch` is the prompt batch (`input_ids`, `attention_mask`: left padding, a plan's hole); the cache's first `width - 1`
    positions are the prompts but their last tokens, which each row reads again (its hidden state predicts the
    answer's first token), followed by its answer's tokens but the last, right-padded. With `weights` (a bf16 copy
    of the model's parameters) the rows' cache is copied in their dtype and the answers read with them.
    """
    decoder, head, cap, scale = causal_parts(model)
    mask = batch["attention_mask"]
    width, device = mask.shape[1], mask.device
    index = torch.tensor(rows, device=device)
    past = mask[index, :width - 1]
    last = batch["input_ids"][index, width - 1].tolist()
    longest = max(map(len, answers))
    ids = torch.zeros((len(rows), longest), dtype=torch.long)
    new = torch.zeros((len(rows), longest), dtype=torch.long)
    for r, answer in enumerate(answers):
        ids[r, :len(answer)] = torch.tensor([last[r], *answer[:-1]], dtype=torch.long)
        new[r, :len(answer)] = 1
    ids, new = ids.to(device), new.to(device)
    # Positions count each row's real tokens, as `generate` counts them from the mask.
    positions = past.sum(dim=1, keepdim=True) + torch.arange(longest, device=device)
    r = torch.tensor([r for r, a in enumerate(answers) for _ in a], device=device)
    c = torch.tensor([c for a in answers for c in range(len(a))], device=device)
    targets = torch.tensor([t for a in answers for t in a], device=device)
    with torch.inference_mode():  # a copy of the rows' cache: generation's own is left as it was
        sub = DynamicCache(config=model.config)
        for ours, theirs in zip(sub.layers, cache.layers):
            keys, values = theirs.keys[index, :, :width - 1], theirs.values[index, :, :width - 1]
            ours.update(*((keys, values) if weights is None else (keys.to(weights.dtype), values.to(weights.dtype))))
        hidden = run_decoder(decoder, weights, input_ids=ids, attention_mask=torch.cat([past, new], dim=1),
                             position_ids=positions, use_cache=True, **{cache_keyword(decoder): sub}).last_hidden_state
        losses = row_losses(head, hidden[r, c], targets, cap, scale, weights)
    return torch.zeros(len(rows), dtype=torch.float64).index_add_(0, r.cpu(), losses.double().cpu()).tolist()
