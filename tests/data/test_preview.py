"""The token preview shows exactly the tokens training sees, each trained turn in the trained colour."""
from __future__ import annotations

import copy
import html
import re

import pytest

from studio.data.formatting import tokenize_example
from studio.data.preview import preview, preview_html
from studio.data.templates import get_template
from studio.examples import Example

SHORT = Example(instruction="Uppercase the word.", output="APPLE", input="apple")
LONG_PROMPT = Example(instruction="Sort the words alphabetically: " + "kite lemon mango night " * 20, output="fox")
UNICODE = Example(instruction="Reverse <b>this</b> & that.", output="ü 😀 done")
CHAT = Example(instruction="And kite?", output="KITE", system="Be brief.",
               history=(("user", "Uppercase apple."), ("assistant", "APPLE")))


def decode(tokenizer, ids: list[int]) -> str:
    """Decode keeping special tokens and spacing exactly."""
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


@pytest.fixture(scope="module")
def bos_tokenizer(tiny_tokenizer):
    """A copy of the tiny tokenizer that prepends <bos>, as Gemma's does."""
    tok = copy.deepcopy(tiny_tokenizer)
    tok.add_bos_token = True
    return tok


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


def test_preview_marks_every_trained_turn_of_a_chat(tiny_tokenizer):
    p = preview(tiny_tokenizer, get_template("chatml"), CHAT, 256)
    trained = "".join(t.text if t.trained else "\x00" for t in p.tokens)
    assert [run for run in trained.split("\x00") if run] == ["APPLE<|im_end|>", "KITE<|im_end|><eos>"]
    page = preview_html(p)
    assert p.n_answers == 2 and "trained (2 assistant turns + end-of-sequence)" in page
    assert "tok-note" not in page


def test_preview_of_a_chat_under_a_single_turn_template_says_only_the_last_answer_is_trained(tiny_tokenizer):
    p = preview(tiny_tokenizer, get_template("alpaca"), CHAT, 256)
    assert p.flattened and p.n_answers == 1
    assert "only the last answer is trained; pick a chat template" in preview_html(p)
    assert not preview(tiny_tokenizer, get_template("alpaca"), SHORT, 256).flattened
