"""Reading a batch's prompts without the padding waste: a prefix every row shares read once, rows grouped by length,
their KV caches laid side by side.

A left-padded batch reads its longest prompt in every row. AlpacaEval's 43 held-out prompts of 15-204 tokens are
8,772 tokens read for 1,969 real ones: 28 s of each Compare pass on 2 cores, before its first answer token. And the
prompt-only baseline puts the same k training examples in front of every prompt: on the word tasks 79 of each
prompt's 95-102 tokens are the same shots, read 48 times over.

A `Plan` says how a batch is read: `prefix`, the leading tokens every row shares (read once, one row), then
`groups` of rows whose remaining tokens differ little in length (each group's longest is at most `SLACK` times its
shortest), each group padded only to its own longest. `reading_plan` picks the plan that reads the fewest tokens, and
anything but the one plain pass only when that reads at most 1/`PAYS` of the padded batch: prompts of similar length
that share little (the built-in word tasks' Compare) keep the one plain forward pass.

The batch `generate` sees (`layout`) puts each row's prompt where the plan reads it: left padding, the shared
prefix, the group's padding (a hole, masked like the left padding), then the row's own tokens. `prefilled_cache`
reads the prefix once, then each group on top of copies of the prefix's cache, up to each row's last prompt token,
and lays the groups' caches side by side, right-aligned and left-padded with zeros to the batch's width. At every
real position that is what one pass over the laid-out batch caches (padding is masked either way, and each row's
positions count its real tokens only, as `generate` counts them from the attention mask), so `generate` goes on
from it: its own first step reads each row's last prompt token. With no prefix the layout is the plain left-padded
batch. Measured on the AlpacaEval run (Gemma 3 270M with and without its adapter, 24 and 100 new tokens): the same 43
raw answers, token for token, as the plain batch.

Only where that holds by construction: greedy or sampled decoding (beams copy the cache), a `DynamicCache` of full or
sliding-window layers (not a static, quantized or recurrent one), and a batch no wider than the sliding window (a
wider one would have dropped its oldest positions group by group). Anything else reads the plain padded batch.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from studio.train.trainer import causal_parts

# A group's longest prompt is at most this many times its shortest: measured on the AlpacaEval prompts, 1.1 to 1.5
# read them equally fast (4.4-5.7 s); 1.0 makes 33 forward passes (6.5 s), 2.0 pads a third more (6-8 s).
SLACK = 1.25
# A plan other than the plain batch is used only when the plain batch would read this many times its tokens: a few
# padded tokens cost less than the extra forward passes, and the plain pass is the path the demo's answers were
# checked on.
PAYS = 1.5


@dataclass(frozen=True)
class Plan:
    """How a batch's prompts are read: `prefix` leading tokens all rows share, once, then each group of rows."""

    groups: list[list[int]]
    prefix: int = 0
    sizes: list[int] = field(default_factory=list, compare=False)  # each row's prompt length, in tokens

    @property
    def plain(self) -> bool:
        """Whether this is the one plain left-padded pass (`generate` reads the prompts itself)."""
        return self.prefix == 0 and len(self.groups) <= 1

    def span(self, group: list[int]) -> int:
        """The group's own tokens after the prefix, padded to its longest row."""
        return max(self.sizes[i] for i in group) - self.prefix


def whole(lengths: list[int]) -> Plan:
    """The plain plan: every row in one group, nothing shared."""
    return Plan([list(range(len(lengths)))], 0, list(lengths))


def length_groups(lengths: list[int], slack: float = SLACK) -> list[list[int]]:
    """Row indices grouped by prompt length, shortest first; a group's longest is at most `slack` x its shortest."""
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if groups and lengths[i] <= slack * lengths[groups[-1][0]]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def tokens_read(plan: Plan) -> int:
    """Prompt tokens the forward passes of `plan` read: the prefix once, each group padded to its own longest."""
    return plan.prefix + sum(len(group) * plan.span(group) for group in plan.groups if group)


def shared_prefix(rows: list[list[int]]) -> int:
    """How many leading tokens every row shares, leaving each row at least its last token to read on its own."""
    if not rows:
        return 0
    most = min(map(len, rows)) - 1
    n = 0
    while n < most and all(row[n] == rows[0][n] for row in rows):
        n += 1
    return n


def reading_plan(rows: list[list[int]]) -> Plan:
    """The plan that reads the fewest tokens (a shared prefix once, length groups), if it pays; else the plain batch."""
    lengths = [len(row) for row in rows]
    plain = whole(lengths)
    if not lengths or min(lengths) < 2:  # a one-token prompt has nothing to read before its last token
        return plain
    prefix = shared_prefix(rows)
    best = min([_grouped(lengths, 0)] + ([_grouped(lengths, prefix)] if prefix else []), key=tokens_read)
    return best if not best.plain and tokens_read(plain) >= PAYS * tokens_read(best) else plain


def _grouped(lengths: list[int], prefix: int) -> Plan:
    """The prefix, then the rest of the rows in one group, or in length groups where they pay."""
    one = Plan([list(range(len(lengths)))], prefix, lengths)
    groups = Plan(length_groups([n - prefix for n in lengths]), prefix, lengths)
    return groups if len(groups.groups) > 1 and tokens_read(one) >= PAYS * tokens_read(groups) else one


def can_prefill(model: Any, width: int, num_beams: int) -> bool:
    """Whether this model's generation can go on from a `prefilled_cache` of a batch `width` tokens wide."""
    if num_beams != 1 or getattr(model.generation_config, "cache_implementation", None):
        return False
    layers = DynamicCache(config=model.config).layers
    return bool(layers) and all(
        type(layer) is DynamicLayer or (type(layer) is DynamicSlidingWindowLayer and width <= layer.sliding_window)
        for layer in layers)


def batch_plan(model: Any, rows: list[list[int]], num_beams: int) -> Plan:
    """How this model reads a batch's prompts: `reading_plan`'s where it can go on from it, else the plain batch."""
    plan = reading_plan(rows)
    if not plan.plain and can_prefill(model, max(plan.sizes), num_beams):
        return plan
    return whole(plan.sizes)


def layout(rows: list[list[int]], plan: Plan, pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """The batch `generate` reads: each row right-aligned as [padding, shared prefix, group's padding, own tokens].

    The group's padding (a hole after the prefix) holds the row's first token, masked: never read by the model, and
    an id the row has anyway, so a repetition penalty over the row's ids is unchanged. With no prefix this is the
    plain left-padded batch. Laid out by hand, so the shared tokenizer's padding side is left alone (a training
    thread may be using it).
    """
    width = max(plan.sizes)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for group in plan.groups:
        span = plan.span(group)
        for r in group:
            row, start = rows[r], width - span - plan.prefix
            ids[r, start:start + plan.prefix] = torch.tensor(row[:plan.prefix], dtype=torch.long)
            mask[r, start:start + plan.prefix] = 1
            if plan.prefix:  # with no prefix the hole is left padding
                ids[r, width - span:width - len(row) + plan.prefix] = row[0]
            ids[r, width - len(row) + plan.prefix:] = torch.tensor(row[plan.prefix:], dtype=torch.long)
            mask[r, width - len(row) + plan.prefix:] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def cache_keyword(module: Any) -> str:
    """The name `module.forward` takes a KV cache by: `cache` from transformers 5.2x, `past_key_values` before."""
    while hasattr(module, "get_base_model") and module.get_base_model() is not module:
        module = module.get_base_model()  # PeftModel.forward takes **kwargs: ask the model inside
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def reader(model: Any) -> Any:
    """What reads prompts into a cache: the decoder alone where it can be reached (nothing here needs logits)."""
    try:
        return causal_parts(model)[0]
    except TypeError:
        return model


def prefilled_cache(model: Any, ids: torch.Tensor, mask: torch.Tensor, plan: Plan) -> DynamicCache:
    """The KV cache of a `layout` batch's prompts but each row's last token: the prefix once, then group by group."""
    read, width, prefix = reader(model), ids.shape[1], plan.prefix
    keyword = cache_keyword(read)
    shared = _read_prefix(model, read, keyword, ids, mask, prefix) if prefix else None
    parts = []
    for group in plan.groups:
        rows = torch.tensor(group, device=ids.device)
        span = plan.span(group)
        sub_ids, sub_mask = ids[rows, width - span:-1], mask[rows, width - span:-1]
        cache = _copies(model, shared, len(group)) if shared is not None else DynamicCache(config=model.config)
        if sub_ids.shape[1]:
            # Positions count each row's real tokens from its first, as `generate` counts them from the mask.
            positions = prefix + (sub_mask.cumsum(-1) - 1).masked_fill(sub_mask == 0, 0)
            seen = torch.cat([sub_mask.new_ones((len(group), prefix)), sub_mask], dim=1)
            read(input_ids=sub_ids, attention_mask=seen, position_ids=positions, use_cache=True,
                 **{keyword: cache})
        parts.append((rows, cache))
    return _side_by_side(model, parts, len(ids), width - 1)


def _read_prefix(model: Any, read: Any, keyword: str, ids: torch.Tensor, mask: torch.Tensor,
                 prefix: int) -> DynamicCache:
    """The cache of the shared prefix, read once from the first row."""
    start = int(mask[0].argmax())  # the first real token: the prefix follows the row's left padding
    tokens = ids[:1, start:start + prefix]
    cache = DynamicCache(config=model.config)
    positions = torch.arange(prefix, device=ids.device).unsqueeze(0)
    read(input_ids=tokens, attention_mask=torch.ones_like(tokens), position_ids=positions, use_cache=True,
         **{keyword: cache})
    return cache


def _copies(model: Any, shared: DynamicCache, n_rows: int) -> DynamicCache:
    """A fresh cache holding `n_rows` copies of a one-row cache, to read a group on top of."""
    cache = DynamicCache(config=model.config)
    for ours, theirs in zip(cache.layers, shared.layers):
        ours.update(theirs.keys.expand(n_rows, -1, -1, -1).contiguous(),
                    theirs.values.expand(n_rows, -1, -1, -1).contiguous())
    return cache


def _side_by_side(model: Any, parts: list[tuple[torch.Tensor, DynamicCache]], n_rows: int,
                  width: int) -> DynamicCache:
    """One cache of `n_rows` rows `width` positions wide: each group's layers right-aligned in its rows, zeros left."""
    merged = DynamicCache(config=model.config)
    for index, layer in enumerate(merged.layers):
        layers = [(rows, cache.layers[index]) for rows, cache in parts]
        merged_kv = []
        for name in ("keys", "values"):
            first = getattr(layers[0][1], name)
            full = first.new_zeros((n_rows, first.shape[1], width, first.shape[3]))
            for rows, part in layers:
                states = getattr(part, name)
                full[rows, :, width - states.shape[-2]:] = states
            merged_kv.append(full)
        layer.update(*merged_kv)
    return merged
