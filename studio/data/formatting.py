"""The exact tokens the model sees: ids, the loss mask, truncation, and a token-by-token preview of them.

A rendered example is a list of (text, trained) pieces (`Rendered.segments`): one masked prompt and one trained
answer for a single-turn template, alternating masked and trained pieces for a chat under a chat template. The
first piece is tokenised as generation tokenises prompts (special tokens such as BOS added once, see
`prompt_ids`), the others without special tokens, and the last (the final answer) is followed by `eos_token_id`,
so the tuned model learns to stop. An over-long chat first loses its oldest exchanges (re-rendered without them,
so the system text stays); if the last exchange alone is still too long, the start of the prompt goes (its end
holds the response header, its BOS is kept), and an answer longer than `max_length` on its own loses its end.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from studio.data.templates import PromptTemplate, Rendered
from studio.errors import TemplateError
from studio.examples import Example


@dataclass(frozen=True)
class Features:
    """One tokenised example: ids plus a mask of the positions the loss is taken on."""

    input_ids: list[int]
    completion_mask: list[int]  # 1 where trained (answer + EOS), 0 where masked (prompt)
    n_prompt: int
    n_completion: int
    truncated: bool


def eos_token_id(tokenizer: Any) -> int:
    """The tokenizer's end-of-sequence id, which every completion ends with."""
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise TemplateError("This model's tokenizer has no end-of-sequence token, so answers cannot be taught to stop.")
    return int(eos)


def _adds_special(tokenizer: Any, prompt: str) -> bool:
    # Chat templates often write the BOS text themselves; adding special tokens on top would give two BOS.
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and prompt.startswith(bos))


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Prompt ids exactly as training uses them; generation should encode prompts the same way."""
    return list(tokenizer(prompt, add_special_tokens=_adds_special(tokenizer, prompt))["input_ids"])


def _encode_prompts(tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    """Batch version of `prompt_ids` (one fast-tokenizer call per special-token setting)."""
    out: list[list[int]] = [[] for _ in prompts]
    for special in (True, False):
        idx = [i for i, p in enumerate(prompts) if _adds_special(tokenizer, p) == special]
        if idx:
            encoded = tokenizer([prompts[i] for i in idx], add_special_tokens=special)["input_ids"]
            for i, ids in zip(idx, encoded):
                out[i] = list(ids)
    return out


Pieces = list[tuple[list[int], bool]]  # (token ids, trained) in order; the last piece is the answer + EOS


def _encode(tokenizer: Any, rendered: Sequence[Rendered]) -> list[Pieces]:
    """Each rendered example as (ids, trained) pieces, untruncated, in three batched tokenizer calls."""
    eos = eos_token_id(tokenizer)
    if not rendered:  # the tokenizer's batch call fails on an empty list
        return []
    segments = [r.segments() for r in rendered]
    firsts = _encode_prompts(tokenizer, [segs[0][0] for segs in segments])
    rest = [text for segs in segments for text, _ in segs[1:]]
    rest_ids = iter(tokenizer(rest, add_special_tokens=False)["input_ids"]) if rest else iter(())
    out = []
    for segs, first in zip(segments, firsts):
        pieces = [(list(first), segs[0][1])] + [(list(next(rest_ids)), trained) for _, trained in segs[1:]]
        pieces[-1] = ([*pieces[-1][0], eos], True)
        out.append(pieces)
    return out


def _kept_spans(n_prompt: int, n_answer: int, max_length: int, head: int) -> tuple[slice, slice, slice]:
    """What survives truncation: the first `head` tokens (BOS), the prompt's tail, the answer's start."""
    answer = min(n_answer, max(max_length - head, 0))
    room = max(max_length - head - answer, 0)
    return slice(0, head), slice(max(head, n_prompt - room), n_prompt), slice(n_prompt, n_prompt + answer)


def fit(
    prompt: list[int], completion: list[int], max_length: int, bos_id: int | None
) -> tuple[list[int], list[int], bool]:
    """Truncate to `max_length`: drop the prompt's start (keeping its BOS), then the completion's end if needed."""
    if len(prompt) + len(completion) <= max_length:
        return prompt, completion, False
    head = int(bool(prompt) and bos_id is not None and prompt[0] == bos_id)
    first, tail, answer = _kept_spans(len(prompt), len(completion), max_length, head)
    return prompt[first] + prompt[tail], completion[:answer.stop - answer.start], True


def _features(pieces: Pieces, max_length: int, bos_id: int | None, dropped_turns: bool = False) -> Features:
    """Ids and mask from pieces; what still does not fit loses the prompt's start, then the answer's end."""
    ids = [t for piece, _ in pieces for t in piece]
    mask = [int(trained) for piece, trained in pieces for _ in piece]
    truncated = len(ids) > max_length
    if truncated:
        n_prompt = len(ids) - len(pieces[-1][0])
        head = int(n_prompt > 0 and bos_id is not None and ids[0] == bos_id)
        spans = _kept_spans(n_prompt, len(pieces[-1][0]), max_length, head)
        ids, mask = [t for s in spans for t in ids[s]], [m for s in spans for m in mask[s]]
    n_trained = sum(mask)
    return Features(input_ids=ids, completion_mask=mask, n_prompt=len(ids) - n_trained, n_completion=n_trained,
                    truncated=truncated or dropped_turns)


def tokenize_example(tokenizer: Any, template: PromptTemplate, example: Example, max_length: int) -> Features:
    """Ids and loss mask for one example, truncated to `max_length`."""
    return tokenize_dataset(tokenizer, template, [example], max_length)[0]


def tokenize_dataset(
    tokenizer: Any, template: PromptTemplate, examples: Sequence[Example], max_length: int
) -> list[Features]:
    """Ids and loss masks for many examples, tokenised in batches."""
    encoded = _encode(tokenizer, [template.render(e) for e in examples])
    bos = getattr(tokenizer, "bos_token_id", None)
    out = []
    for example, pieces in zip(examples, encoded):
        dropped = False
        if _length(pieces) > max_length and len(pieces) > 2:
            pieces, dropped = _recent_turns(tokenizer, template, example, pieces, max_length), True
        out.append(_features(pieces, max_length, bos, dropped))
    return out


def _length(pieces: Pieces) -> int:
    return sum(len(ids) for ids, _ in pieces)


def _recent_turns(tokenizer: Any, template: PromptTemplate, example: Example, pieces: Pieces,
                  max_length: int) -> Pieces:
    """An over-long chat re-rendered without its oldest exchanges until it fits (or only the last one is left)."""
    # Pieces alternate masked, trained: dropping exchange i saves about its two pieces; start from that guess.
    excess, drop, saved = _length(pieces) - max_length, 0, 0
    n_earlier = (len(pieces) - 2) // 2
    while drop < n_earlier and saved < excess:
        saved += len(pieces[2 * drop][0]) + len(pieces[2 * drop + 1][0])
        drop += 1
    while True:
        shorter = _encode(tokenizer, [template.render(example.without_oldest(drop))])[0]
        if _length(shorter) <= max_length or drop >= n_earlier:
            return shorter
        drop += 1


def token_lengths(
    tokenizer: Any, template: PromptTemplate, examples: Sequence[Example], max_length: int
) -> list[int]:
    """Untruncated token counts (prompt + answer + EOS) per example, for a length histogram against `max_length`."""
    # max_length is not applied: the histogram is there to show how many rows it would cut.
    return [_length(pieces) for pieces in _encode(tokenizer, [template.render(e) for e in examples])]


def seeded_sample(examples: Sequence[Example], n: int, seed: int) -> list[Example]:
    """Up to n examples picked at random with `seed` (all of them, in order, when there are no more than n)."""
    if len(examples) <= n:
        return list(examples)
    return [examples[i] for i in sorted(random.Random(seed).sample(range(len(examples)), n))]
