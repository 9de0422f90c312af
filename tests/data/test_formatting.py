"""Tokenisation gives the right ids, masks and truncation; the preview shows exactly those tokens."""
from __future__ import annotations

import copy
import html
import re

import pytest

from studio.data.formatting import (
    fit,
    prompt_ids,
    token_lengths,
    tokenize_dataset,
    tokenize_example,
)
from studio.data.preview import preview, preview_html
from studio.data.templates import get_template
from studio.errors import TemplateError
from studio.examples import Example

SHORT = Example(instruction="Uppercase the word.", output="APPLE", input="apple")
LONG_PROMPT = Example(instruction="Sort the words alphabetically: " + "kite lemon mango night " * 20, output="fox")
UNICODE = Example(instruction="Reverse <b>this</b> & that.", output="ü 😀 done")


def decode(tokenizer, ids: list[int]) -> str:
    """Decode keeping special tokens and spacing exactly."""
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


@pytest.fixture(scope="module")
def bos_tokenizer(tiny_tokenizer):
    """A copy of the tiny tokenizer that prepends <bos>, as Gemma's does."""
    tok = copy.deepcopy(tiny_tokenizer)
    tok.add_bos_token = True
    assert tok("a")["input_ids"][0] == tok.bos_token_id
    return tok


@pytest.mark.parametrize("name", ["instruction_output", "alpaca", "chatml", "phi3"])
def test_masks_cover_answer_and_eos_only(tiny_tokenizer, name):
    template = get_template(name)
    rendered = template.render(SHORT)
    feats = tokenize_example(tiny_tokenizer, template, SHORT, 256)
    n = feats.n_prompt
    assert feats.completion_mask == [0] * n + [1] * feats.n_completion
    assert len(feats.input_ids) == n + feats.n_completion
    assert feats.input_ids[-1] == tiny_tokenizer.eos_token_id
    assert decode(tiny_tokenizer, feats.input_ids[:n]) == rendered.prompt
    assert decode(tiny_tokenizer, feats.input_ids[n:-1]) == rendered.completion
    assert not feats.truncated


def test_prompt_is_tokenised_alone_as_for_generation(bos_tokenizer):
    template = get_template("instruction_output")
    feats = tokenize_example(bos_tokenizer, template, SHORT, 256)
    assert feats.input_ids[: feats.n_prompt] == bos_tokenizer(template.prompt(SHORT))["input_ids"]
    assert feats.input_ids[0] == bos_tokenizer.bos_token_id


def test_bos_written_by_a_chat_template_is_not_doubled(bos_tokenizer):
    tok = copy.deepcopy(bos_tokenizer)
    tok.chat_template = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    ids = tokenize_example(tok, get_template("tokenizer", tokenizer=tok), SHORT, 256).input_ids
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert prompt_ids(tok, "<bos>hi") == prompt_ids(tok, "hi")


def test_truncation_keeps_bos_prompt_end_and_whole_completion(bos_tokenizer):
    template = get_template("instruction_output")
    full = tokenize_example(bos_tokenizer, template, LONG_PROMPT, 10_000)
    feats = tokenize_example(bos_tokenizer, template, LONG_PROMPT, 32)
    assert feats.truncated and not full.truncated
    assert len(feats.input_ids) == 32
    assert feats.input_ids[0] == bos_tokenizer.bos_token_id
    assert feats.input_ids[feats.n_prompt:] == full.input_ids[full.n_prompt:]
    assert decode(bos_tokenizer, feats.input_ids[: feats.n_prompt]).endswith("\n\n### Output:\n")
    assert feats.input_ids[1: feats.n_prompt] == full.input_ids[full.n_prompt - feats.n_prompt + 1: full.n_prompt]


def test_overlong_completion_loses_its_end(bos_tokenizer):
    example = Example(instruction="Count.", output="apple banana cherry " * 20)
    feats = tokenize_example(bos_tokenizer, get_template("instruction_output"), example, 16)
    assert feats.truncated and len(feats.input_ids) == 16
    assert feats.n_prompt == 1 and feats.input_ids[0] == bos_tokenizer.bos_token_id
    assert feats.input_ids[-1] != bos_tokenizer.eos_token_id
    assert decode(bos_tokenizer, feats.input_ids[1:]).startswith("apple banana")


def test_fit_without_bos():
    assert fit([5, 6, 7, 8], [9, 1], 4, bos_id=None) == ([7, 8], [9, 1], True)
    assert fit([5, 6, 7, 8], [9, 1], 4, bos_id=5) == ([5, 8], [9, 1], True)
    assert fit([5, 6], [9, 1], 4, bos_id=5) == ([5, 6], [9, 1], False)
    assert fit([2, 6], [9, 8, 7, 1], 3, bos_id=2) == ([2], [9, 8], True)


def test_tokenizer_without_eos(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.eos_token = None
    with pytest.raises(TemplateError, match="no end-of-sequence token"):
        tokenize_example(tok, get_template("alpaca"), SHORT, 256)


def test_dataset_matches_single_examples_and_lengths(tiny_tokenizer):
    template = get_template("alpaca")
    examples = [SHORT, LONG_PROMPT, UNICODE]
    batch = tokenize_dataset(tiny_tokenizer, template, examples, 64)
    assert batch == [tokenize_example(tiny_tokenizer, template, e, 64) for e in examples]
    lengths = token_lengths(tiny_tokenizer, template, examples, 64)
    assert lengths == [len(tokenize_example(tiny_tokenizer, template, e, 10_000).input_ids) for e in examples]
    assert lengths[1] > 64 and batch[1].truncated
    assert tokenize_dataset(tiny_tokenizer, template, [], 64) == [] == token_lengths(tiny_tokenizer, template, [], 64)


def test_preview_spans_join_back_to_the_text(tiny_tokenizer):
    template = get_template("chatml")
    p = preview(tiny_tokenizer, template, UNICODE, 256)
    rendered = template.render(UNICODE)
    assert (p.prompt_text, p.completion_text) == (rendered.prompt, rendered.completion)
    assert "".join(t.text for t in p.tokens) == rendered.prompt + rendered.completion + "<eos>"
    assert [t.trained for t in p.tokens] == [False] * p.n_prompt + [True] * p.n_completion
    assert p.n_total == len(p.tokens) == p.n_prompt + p.n_completion and p.max_length == 256
    assert p.tokens[-1].token_id == tiny_tokenizer.eos_token_id


def test_preview_of_truncated_example(bos_tokenizer):
    p = preview(bos_tokenizer, get_template("instruction_output"), LONG_PROMPT, 32)
    feats = tokenize_example(bos_tokenizer, get_template("instruction_output"), LONG_PROMPT, 32)
    assert p.truncated and p.n_total == 32
    assert [t.token_id for t in p.tokens] == feats.input_ids
    assert "".join(t.text for t in p.tokens) == decode(bos_tokenizer, feats.input_ids)


def test_preview_html_escapes_and_marks_spans(tiny_tokenizer):
    p = preview(tiny_tokenizer, get_template("chatml"), UNICODE, 256)
    page = preview_html(p)
    assert "<|im_start|>" not in page and "<b>this" not in page
    assert "&lt;" in page and "&gt;" in page and "&amp;" in page
    text = page.split('<div class="tok-text"', 1)[1].split(">", 1)[1].rsplit("</div>", 2)[0]
    assert html.unescape(re.sub(r"<[^>]+>", "", text)).replace("↵", "") == "".join(t.text for t in p.tokens)
    assert page.count('class="tok tok-masked"') == p.n_prompt + 1  # + the legend's sample
    assert page.count('class="tok tok-trained"') == p.n_completion + 1
    assert f"prompt {p.n_prompt} masked · answer {p.n_completion} trained · {p.n_total} / 256 tokens" in page
    assert "↵\n" in page and "white-space:pre-wrap" in page
    assert "Truncated" not in page


def test_preview_html_warns_when_truncated(tiny_tokenizer):
    page = preview_html(preview(tiny_tokenizer, get_template("alpaca"), LONG_PROMPT, 32))
    assert 'class="tok-warning"' in page and "longer than 32 tokens" in page
