"""Tokenisation gives the right ids, masks and truncation; the preview shows exactly those tokens."""
from __future__ import annotations

import copy

import pytest

from studio.data.formatting import (
    fit,
    prompt_ids,
    seeded_sample,
    token_lengths,
    tokenize_dataset,
    tokenize_example,
)
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


# ---- multi-turn chats: masks from the template's pieces -------------------------------------------------------

CHAT = Example(instruction="And pear?", output="PEAR", system="Be brief.",
               history=(("user", "Uppercase apple."), ("assistant", "APPLE"), ("user", "And kite?"),
                        ("assistant", "KITE")))
TOOL_CHAT = Example(instruction="4 C", output="Cold.", prompt_role="tool",
                    history=(("user", "Weather?"), ("assistant", "CALL weather")))
GEMMA_LIKE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>assistant\n{% endif %}"
)


def trained_runs(tokenizer, feats) -> list[str]:
    """The decoded text of each run of consecutive trained tokens."""
    runs, current = [], []
    for token, trained in zip(feats.input_ids, feats.completion_mask):
        if trained:
            current.append(token)
        elif current:
            runs.append(decode(tokenizer, current))
            current = []
    return runs + ([decode(tokenizer, current)] if current else [])


def test_every_assistant_turn_is_trained_and_user_system_masked_chatml(tiny_tokenizer):
    feats = tokenize_example(tiny_tokenizer, get_template("chatml"), CHAT, 512)
    assert trained_runs(tiny_tokenizer, feats) == ["APPLE<|im_end|>", "KITE<|im_end|>", "PEAR<|im_end|><eos>"]
    masked = decode(tiny_tokenizer, [t for t, m in zip(feats.input_ids, feats.completion_mask) if not m])
    assert "Be brief." in masked and "Uppercase apple." in masked and "And kite?" in masked
    assert "APPLE" not in masked and feats.input_ids[-1] == tiny_tokenizer.eos_token_id


def test_tool_turns_are_masked(tiny_tokenizer):
    feats = tokenize_example(tiny_tokenizer, get_template("chatml"), TOOL_CHAT, 512)
    assert trained_runs(tiny_tokenizer, feats) == ["CALL weather<|im_end|>", "Cold.<|im_end|><eos>"]
    masked = decode(tiny_tokenizer, [t for t, m in zip(feats.input_ids, feats.completion_mask) if not m])
    assert "<|im_start|>tool\n4 C<|im_end|>" in masked


def test_every_assistant_turn_is_trained_with_the_models_chat_template(bos_tokenizer):
    tok = copy.deepcopy(bos_tokenizer)
    tok.chat_template = GEMMA_LIKE
    feats = tokenize_example(tok, get_template("chat", tokenizer=tok), CHAT, 512)
    assert trained_runs(tok, feats) == ["APPLE<end_of_turn>", "KITE<end_of_turn>", "PEAR<end_of_turn>\n<eos>"]
    assert feats.input_ids.count(tok.bos_token_id) == 1 and feats.input_ids[0] == tok.bos_token_id


def test_a_single_turn_template_trains_only_the_last_answer_of_a_chat(tiny_tokenizer):
    feats = tokenize_example(tiny_tokenizer, get_template("alpaca"), CHAT, 512)
    assert trained_runs(tiny_tokenizer, feats) == ["PEAR<eos>"]


def test_an_overlong_chat_loses_its_oldest_exchanges_first(tiny_tokenizer):
    template = get_template("chatml")
    full = tokenize_example(tiny_tokenizer, template, CHAT, 512)
    without_first = tokenize_example(tiny_tokenizer, template, CHAT.without_oldest(1), 512)
    feats = tokenize_example(tiny_tokenizer, template, CHAT, len(without_first.input_ids))
    assert feats.truncated and len(full.input_ids) > len(feats.input_ids)
    assert feats.input_ids == without_first.input_ids  # the system text and the last two exchanges, whole
    assert trained_runs(tiny_tokenizer, feats) == ["KITE<|im_end|>", "PEAR<|im_end|><eos>"]
    assert "Be brief." in decode(tiny_tokenizer, feats.input_ids)


def test_when_only_the_last_exchange_is_left_the_prompt_start_goes(bos_tokenizer):
    template = get_template("chatml")
    feats = tokenize_example(bos_tokenizer, template, CHAT, 12)
    assert len(feats.input_ids) == 12 and feats.truncated
    assert trained_runs(bos_tokenizer, feats)[-1] == "PEAR<|im_end|><eos>"
    assert sum(feats.completion_mask) == feats.n_completion and feats.n_prompt + feats.n_completion == 12


def test_token_lengths_count_every_piece(tiny_tokenizer):
    template = get_template("chatml")
    assert token_lengths(tiny_tokenizer, template, [CHAT], 16) == [len(tokenize_example(
        tiny_tokenizer, template, CHAT, 10_000).input_ids)]


def test_seeded_sample_is_random_reproducible_and_ordered():
    items = [Example(str(i), "o") for i in range(1000)]
    first, again = seeded_sample(items, 50, seed=3), seeded_sample(items, 50, seed=3)
    assert first == again and len(first) == 50 and first != items[:50]
    assert [int(e.instruction) for e in first] == sorted(int(e.instruction) for e in first)
    assert seeded_sample(items[:10], 50, seed=3) == items[:10]
