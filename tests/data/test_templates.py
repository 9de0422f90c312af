"""Prompt templates render the exact expected text; custom and tokenizer templates fail early and clearly."""
from __future__ import annotations

import copy

import pytest

from studio.data.templates import TEMPLATES, Rendered, choose_template, get_template, template_choices
from studio.errors import TemplateError
from studio.examples import Example

PLAIN = Example(instruction="Uppercase the word.", output="APPLE")
WITH_INPUT = Example(instruction="Uppercase the word.", output="APPLE", input="apple")
CHAT = Example(
    instruction="And this one?", output="PEAR", system="Be brief.",
    history=(("user", "Uppercase apple."), ("assistant", "APPLE")),
)
ALPACA_HEAD = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
ALPACA_INPUT_HEAD = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request."
)
GEMMA_LIKE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>assistant\n{% endif %}"
)


def with_chat_template(tokenizer, chat_template: str | None):
    """A copy of the tiny tokenizer carrying `chat_template`."""
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = chat_template
    return tok


@pytest.mark.parametrize(
    ("name", "example", "expected"),
    [
        ("instruction_output", PLAIN, Rendered("### Instruction:\nUppercase the word.\n\n### Output:\n", "APPLE")),
        ("instruction_output", WITH_INPUT, Rendered(
            "### Instruction:\nUppercase the word.\n\n### Input:\napple\n\n### Output:\n", "APPLE")),
        ("alpaca", PLAIN, Rendered(
            f"{ALPACA_HEAD}\n\n### Instruction:\nUppercase the word.\n\n### Response:\n", "APPLE")),
        ("alpaca", WITH_INPUT, Rendered(
            f"{ALPACA_INPUT_HEAD}\n\n### Instruction:\nUppercase the word.\n\n### Input:\napple\n\n### Response:\n",
            "APPLE")),
        ("question_answer", PLAIN, Rendered("### Question:\nUppercase the word.\n\n### Answer:\n", "APPLE")),
        ("question_answer", WITH_INPUT, Rendered(
            "### Question:\nUppercase the word.\n\napple\n\n### Answer:\n", "APPLE")),
        ("phi3", PLAIN, Rendered("<|user|>\nUppercase the word.<|end|>\n<|assistant|>\n", "APPLE<|end|>")),
        ("phi3", WITH_INPUT, Rendered(
            "<|user|>\nUppercase the word.\n\napple<|end|>\n<|assistant|>\n", "APPLE<|end|>")),
        ("chatml", PLAIN, Rendered(
            "<|im_start|>user\nUppercase the word.<|im_end|>\n<|im_start|>assistant\n", "APPLE<|im_end|>")),
    ],
)
def test_fixed_templates_render_exact_text(name, example, expected):
    template = get_template(name)
    assert template.render(example) == expected
    assert template.prompt(example) == expected.prompt


def test_phi3_renders_system_and_history_as_turns():
    rendered = get_template("phi3").render(CHAT)
    assert rendered.prompt == (
        "<|system|>\nBe brief.<|end|>\n<|user|>\nUppercase apple.<|end|>\n<|assistant|>\nAPPLE<|end|>\n"
        "<|user|>\nAnd this one?<|end|>\n<|assistant|>\n"
    )
    assert rendered.completion == "PEAR<|end|>"
    assert get_template("phi3").stop_strings == ("<|end|>", "<|user|>", "<|assistant|>", "<|system|>")


def test_chatml_renders_system_and_history_as_turns():
    rendered = get_template("chatml").render(CHAT)
    assert rendered.prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nUppercase apple.<|im_end|>\n"
        "<|im_start|>assistant\nAPPLE<|im_end|>\n<|im_start|>user\nAnd this one?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert rendered.completion == "PEAR<|im_end|>"
    assert get_template("chatml").stop_strings == ("<|im_end|>", "<|im_start|>")


def test_plain_template_keeps_history_as_transcript_and_system_as_first_paragraph():
    rendered = get_template("instruction_output").render(CHAT)
    assert rendered.prompt == (
        "Be brief.\n\n### Instruction:\nUser: Uppercase apple.\nAssistant: APPLE\n\nAnd this one?\n\n### Output:\n"
    )
    assert rendered.completion == "PEAR"
    assert all(get_template(name).stop_strings == ("\n### ",)
               for name in ("alpaca", "instruction_output", "question_answer"))


def test_default_system_applies_only_to_rows_without_one():
    template = get_template("chatml", system="Default.")
    assert template.prompt(PLAIN).startswith("<|im_start|>system\nDefault.<|im_end|>\n<|im_start|>user\n")
    assert template.prompt(CHAT).startswith("<|im_start|>system\nBe brief.<|im_end|>\n")


def test_registry_and_choices():
    assert set(TEMPLATES) == {"alpaca", "instruction_output", "question_answer", "phi3", "chatml"}
    for name, template in TEMPLATES.items():
        assert template.name == name and template.title and template.description
    names = [name for _, name in template_choices()]
    assert names[0] == "instruction_output"
    assert names == [*TEMPLATES, "chat", "custom", "tokenizer"]


def test_unknown_template_name():
    with pytest.raises(TemplateError, match="Unknown template 'nope'"):
        get_template("nope")


def test_custom_template_renders_prompt_and_completion():
    template = get_template("custom", "[{system}] Q: {instruction} | {input}\nA: {output} {{end}}", system="S")
    assert template.render(WITH_INPUT) == Rendered("[S] Q: Uppercase the word. | apple\nA: ", "APPLE {end}")


def test_custom_template_folds_input_into_instruction_when_it_has_no_input_field():
    template = get_template("custom", "### Instruction:\n{instruction}\n\n### Output:\n{output}")
    assert template.prompt(WITH_INPUT) == "### Instruction:\nUppercase the word.\n\napple\n\n### Output:\n"


@pytest.mark.parametrize(
    ("fmt", "stops"),
    [
        ("Q: {instruction}\nA: {output}", ("\nQ:", "\nA:")),
        ("### Instruction:\n{instruction}\n\n### Output:\n{output}", ("\n### Instruction:", "\n### Output:")),
        ("[{system}] Q: {instruction} | {input}\nA: {output} {{end}}", ("{end}", "\n[", "\nA:")),  # text after {output}
        ("{instruction}\n{output}", ()),  # nothing marks the end but EOS
        ("{instruction} -> {output}\n\n", ()),  # mid-line text opens no line; blank text after {output} is no marker
    ],
)
def test_custom_template_stops_where_its_own_format_says(fmt, stops):
    assert get_template("custom", fmt).stop_strings == stops


def test_custom_template_leaves_braces_in_data_alone():
    example = Example(instruction="Return {x}", output="def f(): return {'a': 1}")
    rendered = get_template("custom", "{instruction}\n{output}").render(example)
    assert rendered == Rendered("Return {x}\n", "def f(): return {'a': 1}")


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("{instruction}\n{answer}{output}", r"unknown field \{answer\}; allowed fields are \{instruction\}, \{input\}"),
        ("{instruction.upper}{output}", r"unknown field \{instruction.upper\}"),
        ("{instruction\n{output}", r"unbalanced \{ or \}"),
        ("{instruction}}\n{output}", r"unbalanced \{ or \}"),
        ("{instruction}\n", r"must contain \{output\} exactly once"),
        ("{output}{output}", r"must contain \{output\} exactly once"),
        ("", r"must contain \{output\} exactly once"),
        ("{output}\n{instruction}", r"must end with \{output\}"),
        ("{}\n{output}", "positional field"),
        ("{0}\n{output}", "positional field"),
        ("{instruction:>10}\n{output}", "must be plain"),
        ("{instruction}\n{output!r}", "must be plain"),
    ],
)
def test_custom_template_validation(fmt, message):
    with pytest.raises(TemplateError, match=message):
        get_template("custom", fmt)


def test_tokenizer_template_uses_the_chat_template(tiny_tokenizer):
    tok = with_chat_template(tiny_tokenizer, GEMMA_LIKE)
    template = get_template("tokenizer", tokenizer=tok, system="Default.")
    rendered = template.render(CHAT)
    assert rendered.prompt == (
        "<bos><start_of_turn>system\nBe brief.<end_of_turn>\n<start_of_turn>user\nUppercase apple.<end_of_turn>\n"
        "<start_of_turn>assistant\nAPPLE<end_of_turn>\n<start_of_turn>user\nAnd this one?<end_of_turn>\n"
        "<start_of_turn>assistant\n"
    )
    assert rendered.completion == "PEAR<end_of_turn>\n"
    assert template.prompt(PLAIN).startswith("<bos><start_of_turn>system\nDefault.<end_of_turn>\n")
    assert template.stop_strings == ("<end_of_turn>",)


def test_tokenizer_template_drops_eos_text_the_chat_template_writes(tiny_tokenizer):
    tok = with_chat_template(
        tiny_tokenizer,
        "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{% if m['role'] == 'assistant' %}<eos>"
        "{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}",
    )
    template = get_template("tokenizer", tokenizer=tok)
    assert template.render(PLAIN) == Rendered("[user] Uppercase the word.\n[assistant] ", "APPLE")
    assert template.stop_strings == ()


def test_tokenizer_without_chat_template(tiny_tokenizer):
    expected = "This model's tokenizer has no chat template; pick ChatML, Phi-3 or another template instead."
    with pytest.raises(TemplateError) as info:
        get_template("tokenizer", tokenizer=tiny_tokenizer)
    assert str(info.value) == expected
    with pytest.raises(TemplateError, match="needs the model's tokenizer"):
        get_template("tokenizer")


def test_tokenizer_template_whose_answer_turn_does_not_extend_the_prompt(tiny_tokenizer):
    tok = with_chat_template(
        tiny_tokenizer,
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: <think>{% endif %}",
    )
    with pytest.raises(TemplateError, match="cannot be masked"):
        get_template("tokenizer", tokenizer=tok)


def test_tokenizer_template_that_rejects_a_system_turn(tiny_tokenizer):
    tok = with_chat_template(
        tiny_tokenizer,
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}{{ m['content'] }}\n{% endfor %}",
    )
    assert get_template("tokenizer", tokenizer=tok).render(PLAIN).completion == "APPLE\n"
    with pytest.raises(TemplateError, match="rejected the conversation \\(System role not supported\\)"):
        get_template("tokenizer", tokenizer=tok, system="Be brief.")


# ---- multi-turn chats: every assistant turn is a trained piece under chat templates ----------------------------

TOOL_CHAT = Example(instruction="4 C", output="Cold.", prompt_role="tool",
                    history=(("user", "Weather?"), ("assistant", '[{"name": "weather"}]')))


def pieces(rendered: Rendered) -> list[tuple[str, bool]]:
    """The rendered pieces, checked to join back to prompt + completion."""
    segments = rendered.segments()
    assert "".join(text for text, _ in segments) == rendered.prompt + rendered.completion
    return segments


def test_chatml_trains_every_assistant_turn_and_masks_the_rest():
    segments = pieces(get_template("chatml").render(CHAT))
    assert segments == [
        ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nUppercase apple.<|im_end|>\n"
         "<|im_start|>assistant\n", False),
        ("APPLE<|im_end|>", True),
        ("\n<|im_start|>user\nAnd this one?<|im_end|>\n<|im_start|>assistant\n", False),
        ("PEAR<|im_end|>", True),
    ]


def test_tool_turns_are_masked_and_the_call_is_trained():
    segments = pieces(get_template("phi3").render(TOOL_CHAT))
    assert [(t, trained) for t, trained in segments if trained] == [('[{"name": "weather"}]<|end|>', True),
                                                                    ("Cold.<|end|>", True)]
    assert "<|tool|>\n4 C<|end|>\n<|assistant|>\n" in segments[2][0]


def test_single_turn_templates_flatten_a_chat_and_train_its_last_answer_only():
    rendered = get_template("alpaca").render(CHAT)
    assert pieces(rendered) == [(rendered.prompt, False), ("PEAR", True)]
    assert "User: Uppercase apple.\nAssistant: APPLE\n\nAnd this one?" in rendered.prompt
    assert not get_template("alpaca").multi_turn and get_template("chatml").multi_turn


def test_the_prompt_of_a_chat_holds_the_earlier_turns_for_the_held_out_comparison():
    for name in ("chatml", "phi3", "alpaca", "instruction_output"):
        prompt = get_template(name).prompt(CHAT)
        assert "Uppercase apple." in prompt and "APPLE" in prompt and prompt.rstrip().endswith(
            ("<|im_start|>assistant", "<|assistant|>", "### Response:", "### Output:"))


def test_tokenizer_template_trains_every_assistant_turn(tiny_tokenizer):
    tok = with_chat_template(tiny_tokenizer, GEMMA_LIKE)
    segments = pieces(get_template("tokenizer", tokenizer=tok).render(CHAT))
    assert [text for text, trained in segments if trained] == ["APPLE<end_of_turn>", "PEAR<end_of_turn>\n"]
    assert segments[2] == ("\n<start_of_turn>user\nAnd this one?<end_of_turn>\n<start_of_turn>assistant\n", False)


def test_tokenizer_template_that_rewrites_earlier_turns_is_refused(tiny_tokenizer):
    # Like chat templates that strip earlier reasoning: the history renders differently once the chat grows.
    tok = with_chat_template(
        tiny_tokenizer,
        "{% for m in messages %}{% if m['role'] == 'assistant' and not loop.last %}[old]{% else %}"
        "{{ m['role'] }}: {{ m['content'] }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}",
    )
    template = get_template("tokenizer", tokenizer=tok)
    with pytest.raises(TemplateError, match="renders earlier turns differently as the chat grows"):
        template.render(CHAT)


def test_chat_template_is_the_models_own_else_chatml(tiny_tokenizer):
    assert get_template("chat").name == "chatml"
    assert get_template("chat", tokenizer=tiny_tokenizer).name == "chatml"
    own = get_template("chat", tokenizer=with_chat_template(tiny_tokenizer, GEMMA_LIKE), system="S")
    assert own.name == "tokenizer" and own.system == "S"


def test_choose_template_applies_any_recommended_template_unless_the_user_chose_one():
    # The one rule of the Data tab, the demo and the command line.
    assert choose_template("instruction_output", "question_answer") == "question_answer"  # a sample's own
    assert choose_template("alpaca", "chat") == "chat"  # chat-shaped data
    assert choose_template("alpaca", "") == "alpaca"  # nothing recommended: what was there stays
    assert choose_template("alpaca", "chat", chosen=True) == "alpaca"  # --template, --set or a preset chose it
    assert choose_template("chatml", "question_answer", chosen=True) == "chatml"
