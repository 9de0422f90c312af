"""The token preview: one example token by token, each marked trained or masked, exactly as training sees it."""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from studio.data.formatting import tokenize_example
from studio.data.templates import PromptTemplate
from studio.examples import Example


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
    # Assistant turns trained in this example (a chat under a chat template trains each of them).
    n_answers: int = 1
    # A chat under a single-turn template: earlier turns are flattened into the prompt, only the last answer trained.
    flattened: bool = False


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
        n_answers=len(rendered.segments()) // 2,
        flattened=not template.multi_turn and example.n_answers > 1,
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
    answers = f"{p.n_answers} assistant turns" if p.n_answers > 1 else "answer"
    legend = (
        f'{_span("prompt", False, "masked: not trained")} masked (not trained) · '
        f'{_span("answer", True, "trained")} trained ({answers} + end-of-sequence)'
    )
    counts = (
        f"prompt {p.n_prompt} masked · {answers} {p.n_completion} trained · {p.n_total} / {p.max_length} tokens"
    )
    lines = [
        '<div class="token-preview" style="font-family:ui-monospace,monospace;font-size:13px">',
        f'<div class="tok-legend">{legend}</div>',
        f'<div class="tok-counts">{counts}</div>',
    ]
    if p.flattened:
        lines.append(
            '<div class="tok-note" style="color:#92400e">ℹ This template is single-turn: the earlier turns of this '
            "chat are flattened into the prompt and only the last answer is trained; pick a chat template (Chat, "
            "ChatML, Phi-3) to train every assistant turn.</div>"
        )
    if p.truncated:
        lines.append(
            f'<div class="tok-warning" style="color:#b91c1c">⚠ Truncated: this example is longer than '
            f"{p.max_length} tokens, so its oldest turns, the start of the prompt (or the end of an over-long "
            "answer) were dropped.</div>"
        )
    lines.append(f'<div class="tok-text" style="white-space:pre-wrap;line-height:1.9">{spans}</div>')
    lines.append("</div>")
    return "\n".join(lines)
