"""Held-out answer loss: how likely base and tuned find each reference answer, one forward pass per batch each.

Deterministic, offline and meaningful at any answer length (no generation). Each example is tokenised exactly as
training tokenises it (`formatting.tokenize_dataset`: the template's pieces, BOS once, answer + EOS, truncated to
the run's `max_length`); the scored tokens are the final answer's trained ones (`lengths.answer_tokens`), each
predicted from the tokens before it. Batches are right-padded with an attention mask, so padding only ever sits
after the real tokens and changes nothing they see. The output head runs only at the scored positions, a chunk
of rows at a time (the head is about half the model's FLOPs with a 262k vocabulary); on a CPU it runs over the
vocabulary a slice at a time with an online softmax (`fused_head.head_cross_entropy_rows`), writing no logits.
Both models run under the model's fair lock (`sharing.using`), base then tuned for each batch, and `should_stop()`
is checked before each turn: a stop keeps every example both models scored.

Compare reads the same loss on generation's prompt caches instead (`shared_loss`: the prompts are read once for the
answers and the loss), and reads here, with `batch_losses`, only the examples no cache could score.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from studio.data.formatting import Features, tokenize_dataset
from studio.errors import StudioError
from studio.evaluate.answer_loss_record import AnswerLoss, ExampleLoss, summarise
from studio.evaluate.generation import GenerationStopped, eval_mode
from studio.evaluate.lengths import answer_tokens
from studio.evaluate.precision import ScoringWeights, precision_name, run_decoder, scoring_weights
from studio.evaluate.sharing import using
from studio.examples import Example
from studio.train.fused_head import fused_head_applies, head_cross_entropy_rows, weight_cross_entropy_rows
from studio.train.trainer import causal_parts

BATCH_SIZE = 64  # rows per forward pass at most; `BATCH_TOKENS` decides first
# Rows x longest row per forward pass at most. Measured on 2 cores (the loss, base and tuned): the word tasks' 48
# examples of about 31 tokens took 9.8 s at 256 tokens a pass, 8.8 s at 512, 7.4 s at 1,024 and 8.4 s at 2,048;
# AlpacaEval's 43 of 40-400 tokens 45, 41, 39 and 44 s. Eight rows a pass, whatever their length, took 8.8 and 40 s.
BATCH_TOKENS = 1024
# Scored positions per call of the head. Chunked over the vocabulary (a CPU's fp32 head), 512 rows kept the GEMMs
# efficient; otherwise 512 rows x 262,144 logits is 537 MB in fp32, so a long batch never holds all its logits.
HEAD_ROWS = 512


class NothingScored(GenerationStopped):
    """The answer loss was stopped before both models had scored any example."""

    def __init__(self, total: int) -> None:
        StudioError.__init__(self, f"The answer loss was stopped before both models had scored any of the {total} "
                                   "examples, so there is nothing to show.")
        self.answers = [None] * total


def length_batches(lengths: list[int], batch_size: int, tokens: int = BATCH_TOKENS) -> list[list[int]]:
    """Indices sorted by length and cut into batches of at most `batch_size` rows and `tokens` padded tokens."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batches and len(batches[-1]) < batch_size and (len(batches[-1]) + 1) * lengths[i] <= tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _right_padded(rows: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, :len(row)] = 1
    return ids.to(device), mask.to(device)


def _head(head: torch.nn.Module, hidden: torch.Tensor, cap: float | None, scale: float) -> torch.Tensor:
    """Logits as the model's own forward makes them: head, scale, then the tanh soft-cap."""
    logits = head(hidden).float()
    if scale != 1.0:
        logits = logits * scale
    return logits if not cap else torch.tanh(logits / cap) * cap


def _even_chunks(n: int, most: int) -> list[slice]:
    """`n` rows cut into equal chunks of at most `most` (no small last chunk: a product of a few rows runs slowly)."""
    parts = -(-n // most)
    size = -(-n // parts) if parts else 1
    return [slice(start, start + size) for start in range(0, n, size)]


def _chunk_losses(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, cap: float | None,
                  scale: float, weights: ScoringWeights | None) -> torch.Tensor:
    """Each row's cross-entropy of its target: chunked over the vocabulary where the head allows (no logits kept)."""
    if weights is not None:
        return weight_cross_entropy_rows(hidden, weights.head, weights.head_bias, targets, cap, scale)
    if fused_head_applies(head, hidden):
        return head_cross_entropy_rows(hidden, head, targets, cap, scale)
    return F.cross_entropy(_head(head, hidden, cap, scale), targets, reduction="none")


def row_losses(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, cap: float | None,
               scale: float, weights: ScoringWeights | None = None) -> torch.Tensor:
    """Each hidden state's cross-entropy of its target under the model's head (`weights`' copy of it when given),
    `HEAD_ROWS` rows at a time."""
    if not len(targets):
        return torch.zeros(0)
    return torch.cat([_chunk_losses(head, hidden[part], targets[part], cap, scale, weights)
                      for part in _even_chunks(len(targets), HEAD_ROWS)])


def _positions(features: list[Features]) -> tuple[list[int], list[int]]:
    """(row, position predicting it) of every scored token; the first token of a sequence is never predicted."""
    rows, cols = [], []
    for r, f in enumerate(features):
        end = len(f.input_ids)
        for target in range(max(end - answer_tokens(f), 1), end):
            rows.append(r)
            cols.append(target - 1)
    return rows, cols


def batch_losses(model: Any, features: list[Features], pad_id: int,
                 weights: ScoringWeights | None = None) -> tuple[list[float], list[int]]:
    """Summed cross-entropy of each example's answer tokens, and their count, from one forward pass (with `weights`'
    copy of the model's parameters when given)."""
    decoder, head, cap, scale = causal_parts(model)
    device = next(model.parameters()).device
    ids, mask = _right_padded([f.input_ids for f in features], pad_id, device)
    rows, cols = _positions(features)
    with torch.inference_mode(), eval_mode(model):
        hidden = run_decoder(decoder, weights, input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        r, c = torch.tensor(rows, device=device), torch.tensor(cols, device=device)
        scored, targets = hidden[r, c], ids[r, c + 1]
        losses = row_losses(head, scored, targets, cap, scale, weights)
        sums = torch.zeros(len(features), dtype=torch.float64).index_add_(0, r.cpu(), losses.double().cpu())
    counts = [0] * len(features)
    for row in rows:
        counts[row] += 1
    return sums.tolist(), counts


def answer_loss(model: Any, tokenizer: Any, template: Any, examples: Sequence[Example], max_length: int,
                batch_size: int = BATCH_SIZE, progress: Callable[[str, int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None, precision: str = "fp32") -> AnswerLoss:
    """Mean loss and perplexity of each reference answer with the adapter off (base) and on (tuned), and the change.

    `progress(which, done, total)` after each model's batch; `should_stop()` before each model's turn. A stop keeps
    the examples both scored (`partial`); NothingScored when it came before any. `precision`: the model's own fp32
    weights, a bf16 copy, or `auto` (`studio.evaluate.precision`).
    """
    features = tokenize_dataset(tokenizer, template, examples, max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores: dict[str, dict[int, tuple[float, int]]] = {"base": {}, "tuned": {}}
    start = time.perf_counter()
    weights = scoring_weights(model, precision)
    seconds = {"base": time.perf_counter() - start, "tuned": 0.0}  # the copy's making counts
    name = precision_name(model, weights)
    for batch in length_batches([len(f.input_ids) for f in features], batch_size):
        for who, adapter in (("base", False), ("tuned", True)):
            if should_stop is not None and should_stop():
                return record(scores, seconds, len(examples), name)
            start = time.perf_counter()
            with using(model, adapter=adapter):  # the adapter state is ours alone for the forward pass
                sums, counts = batch_losses(model, [features[i] for i in batch], pad_id, weights)
            seconds[who] += time.perf_counter() - start
            scores[who].update(zip(batch, zip(sums, counts)))
            if progress is not None:
                progress(who, len(scores[who]), len(examples))
    return record(scores, seconds, len(examples), name)


def record(scores: dict[str, dict[int, tuple[float, int]]], seconds: dict[str, float], planned: int,
           precision: str = "fp32") -> AnswerLoss:
    """The record of the examples both models scored ((summed loss, tokens) each, read in `precision`);
    NothingScored when none."""
    done = sorted(set(scores["base"]) & set(scores["tuned"]))
    if not done:
        raise NothingScored(planned)
    examples = []
    for i in done:
        (base_sum, n), (tuned_sum, _) = scores["base"][i], scores["tuned"][i]
        examples.append(ExampleLoss(index=i, tokens=n, base=base_sum / max(n, 1), tuned=tuned_sum / max(n, 1)))
    return summarise(examples, planned, seconds["base"], seconds["tuned"], precision)
