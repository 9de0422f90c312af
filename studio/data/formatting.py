"""The exact tokens the model sees: ids, the loss mask, truncation, and a token-by-token preview of them.

Prompt and completion are tokenised separately: prompt ids are what generation feeds the model at evaluation
time (special tokens such as BOS added once, see `prompt_ids`), completion ids are the answer text without
special tokens followed by `eos_token_id`, so the tuned model learns to stop. Over-long examples lose the start
of the prompt (its end holds the response header, its BOS is kept); an answer longer than `max_length` on its
own loses its end (and its EOS) and keeps only the BOS of the prompt.
"""
from __future__ import annotations

import html
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


@dataclass(frozen=True)
class TokenSpan:
    """One token as the preview shows it: its text, whether it is trained, and its id."""

    text: str
    trained: bool
    token_id: int


@dataclass(frozen=True)
class Preview:
    """One example as the model sees it; `prompt_text`/`completion_text` are the template's untruncated text."""

    prompt_text: str
    completion_text: str
    tokens: list[TokenSpan]
    n_prompt: int
    n_completion: int
    n_total: int
    max_length: int
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


def _encode(tokenizer: Any, rendered: Sequence[Rendered]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids + EOS) for each rendered example, untruncated."""
    eos = eos_token_id(tokenizer)
    if not rendered:  # the tokenizer's batch call fails on an empty list
        return []
    prompts = _encode_prompts(tokenizer, [r.prompt for r in rendered])
    completions = tokenizer([r.completion for r in rendered], add_special_tokens=False)["input_ids"]
    return [(p, [*c, eos]) for p, c in zip(prompts, completions)]


def fit(
    prompt: list[int], completion: list[int], max_length: int, bos_id: int | None
) -> tuple[list[int], list[int], bool]:
    """Truncate to `max_length`: drop the prompt's start (keeping its BOS), then the completion's end if needed."""
    if len(prompt) + len(completion) <= max_length:
        return prompt, completion, False
    head = prompt[:1] if prompt and bos_id is not None and prompt[0] == bos_id else []
    completion = completion[: max(max_length - len(head), 0)]
    room = max_length - len(head) - len(completion)
    body = prompt[len(head):]
    return head + (body[len(body) - room:] if room > 0 else []), completion, True


def _features(prompt: list[int], completion: list[int], max_length: int, bos_id: int | None) -> Features:
    prompt, completion, truncated = fit(prompt, completion, max_length, bos_id)
    return Features(
        input_ids=prompt + completion,
        completion_mask=[0] * len(prompt) + [1] * len(completion),
        n_prompt=len(prompt),
        n_completion=len(completion),
        truncated=truncated,
    )


def tokenize_example(tokenizer: Any, template: PromptTemplate, example: Example, max_length: int) -> Features:
    """Ids and loss mask for one example, truncated to `max_length`."""
    return tokenize_dataset(tokenizer, template, [example], max_length)[0]


def tokenize_dataset(
    tokenizer: Any, template: PromptTemplate, examples: Sequence[Example], max_length: int
) -> list[Features]:
    """Ids and loss masks for many examples, tokenised in batches."""
    pairs = _encode(tokenizer, [template.render(e) for e in examples])
    bos = getattr(tokenizer, "bos_token_id", None)
    return [_features(p, c, max_length, bos) for p, c in pairs]


def token_lengths(
    tokenizer: Any, template: PromptTemplate, examples: Sequence[Example], max_length: int
) -> list[int]:
    """Untruncated token counts (prompt + answer + EOS) per example, for a length histogram against `max_length`."""
    # max_length is not applied: the histogram is there to show how many rows it would cut.
    return [len(p) + len(c) for p, c in _encode(tokenizer, [template.render(e) for e in examples])]


def _span_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    """Text of each token such that the texts join to the decoded sequence.

    Decoding tokens one by one breaks characters split over several byte tokens and drops the leading space
    some decoders strip, so each token's text is the growth of a short decoded window (as streaming servers do).
    A token that ends mid-character gets "" and the next token carries the whole character.
    """
    def decode(part: list[int]) -> str:
        return tokenizer.decode(part, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    texts: list[str] = []
    prefix = read = 0
    for i in range(len(ids)):
        before, after = decode(ids[prefix:read]), decode(ids[prefix:i + 1])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            texts.append(after[len(before):])
            prefix, read = read, i + 1
        else:
            texts.append("")
    if texts and read < len(ids):
        # The sequence ends mid-character (e.g. truncated there): give the remainder to the last token.
        texts[-1] += decode(ids[prefix:])[len(decode(ids[prefix:read])):]
    return texts


def preview(tokenizer: Any, template: PromptTemplate, example: Example, max_length: int) -> Preview:
    """The example token by token, each marked trained or masked, as training will see it."""
    rendered = template.render(example)
    feats = tokenize_example(tokenizer, template, example, max_length)
    texts = _span_texts(tokenizer, feats.input_ids)
    tokens = [
        TokenSpan(text=t, trained=bool(m), token_id=i)
        for t, m, i in zip(texts, feats.completion_mask, feats.input_ids)
    ]
    return Preview(
        prompt_text=rendered.prompt,
        completion_text=rendered.completion,
        tokens=tokens,
        n_prompt=feats.n_prompt,
        n_completion=feats.n_completion,
        n_total=len(feats.input_ids),
        max_length=max_length,
        truncated=feats.truncated,
    )


# Inline styles, so the fragment renders the same in gr.HTML, a report or a notebook without extra CSS.
_MASKED = "background:#e5e7eb;color:#6b7280"
_TRAINED = "background:#fde68a;color:#111827"
_TOKEN = "border:1px solid #ffffff;border-radius:3px;padding:0 1px"


def _span(text: str, trained: bool, title: str) -> str:
    kind, colours = ("trained", _TRAINED) if trained else ("masked", _MASKED)
    return f'<span class="tok tok-{kind}" title="{html.escape(title)}" style="{colours};{_TOKEN}">{text}</span>'


def preview_html(p: Preview) -> str:
    """An HTML fragment of the preview: masked prompt tokens grey, trained answer tokens highlighted."""
    # A newline token would be invisible on its own, so it shows a ↵ before the line break it makes.
    spans = "".join(
        _span(html.escape(t.text).replace("\n", "↵\n"), t.trained, f"token id {t.token_id}") for t in p.tokens
    )
    legend = (
        f'{_span("prompt", False, "masked: not trained")} masked (not trained) · '
        f'{_span("answer", True, "trained")} trained (answer + end-of-sequence)'
    )
    counts = (
        f"prompt {p.n_prompt} masked · answer {p.n_completion} trained · {p.n_total} / {p.max_length} tokens"
    )
    lines = [
        '<div class="token-preview" style="font-family:ui-monospace,monospace;font-size:13px">',
        f'<div class="tok-legend">{legend}</div>',
        f'<div class="tok-counts">{counts}</div>',
    ]
    if p.truncated:
        lines.append(
            f'<div class="tok-warning" style="color:#b91c1c">⚠ Truncated: this example is longer than '
            f"{p.max_length} tokens, so the start of the prompt (or the end of an over-long answer) was dropped.</div>"
        )
    lines.append(f'<div class="tok-text" style="white-space:pre-wrap;line-height:1.9">{spans}</div>')
    lines.append("</div>")
    return "\n".join(lines)
