"""One row -> one Example: lossless repairs are made and listed, anything else is a Skip with its reason."""
from __future__ import annotations

import pytest

from studio.data.rows import Skip, chat_example, flat_example, preference_example, text_value, trim
from studio.examples import Example


def chat(*turns: tuple[str, str], keys: tuple[str, str] = ("role", "content")) -> list[dict]:
    """Turns as a list of {role, content} (or ShareGPT {from, value}) dicts."""
    return [{keys[0]: role, keys[1]: content} for role, content in turns]


def convert(turns, shape: str = "messages") -> tuple[Example, list[str]]:
    repairs: list = []
    return chat_example(turns, shape, repairs), [key for key, _ in repairs]


def test_chat_with_system_and_history_is_kept_as_it_is():
    turns = chat(("system", "Be kind."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye?"),
                 ("assistant", "Bye."))
    example, repairs = convert(turns)
    assert example == Example("Bye?", "Bye.", system="Be kind.", history=(("user", "Hi"), ("assistant", "Hello")))
    assert repairs == [] and example.n_answers == 2


def test_sharegpt_native_roles_are_not_repairs_but_aliases_are():
    turns = chat(("system", "S"), ("human", "Q1"), ("gpt", "A1"), ("user", "Q2"), ("chatgpt", "A2"),
                 keys=("from", "value"))
    example, repairs = convert(turns, "sharegpt")
    assert example == Example("Q2", "A2", system="S", history=(("user", "Q1"), ("assistant", "A1")))
    assert repairs == ["role_alias"]
    assert convert(chat(("human", "q"), ("gpt", "a"), keys=("from", "value")), "sharegpt")[1] == []


@pytest.mark.parametrize(
    "turns, expected, repairs",
    [
        (chat(("assistant", "tail of part 1"), ("user", "b"), ("assistant", "c")), Example("b", "c"),
         ["leading_assistant"]),
        (chat(("user", "a"), ("assistant", "b"), ("user", "c")), Example("a", "b"), ["trailing_user"]),
        (chat(("user", "a"), ("user", "b"), ("assistant", "c")), Example("a\n\nb", "c"), ["repeated_role"]),
        (chat(("user", "a"), ("assistant", ""), ("assistant", "c")), Example("a", "c"), ["empty_turn"]),
        (chat(("user", "a"), ("assistant", "b"), ("user", " "), ("assistant", "c")), Example("a", "b\n\nc"),
         ["empty_turn", "repeated_role"]),
        (chat(("system", "s"), ("assistant", "x"), ("user", "q"), ("assistant", "y"), ("user", "?")),
         Example("q", "y", system="s"), ["leading_assistant", "trailing_user"]),
        ('[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]', Example("Hi", "Yo"), []),
    ],
)
def test_obvious_lossless_repairs(turns, expected, repairs):
    assert convert(turns) == (expected, repairs)


@pytest.mark.parametrize(
    "turns, key, detail",
    [
        ([], "no_turns", "has no turns"),
        (None, "no_turns", "has no turns"),
        (chat(("user", " "), ("assistant", "")), "empty_chat", "has 2 turns, all of them empty"),
        (chat(("assistant", "only an answer")), "no_answer", "has no user turn"),
        (chat(("system", "s")), "no_answer", "has no user turn"),
        (chat(("user", "a question")), "no_answer", "has no assistant answer after its user turn"),
        (chat(("user", "a"), ("wizard", "b")), "unknown_role", "has a turn (2) with the unknown role 'wizard'"),
        ([{"content": "a"}], "unknown_role", "has a turn (1) with no role"),
        (chat(("user", "a"), ("system", "s"), ("assistant", "c")), "system_mid_chat", "has a system turn after"),
        (["hello"], "bad_turn", "has a turn (1) that is not an object"),
        ("not json", "not_turns", "has text where a list of chat turns belongs"),
        ({"role": "user"}, "not_turns", "has no list of chat turns"),
        (chat(("user", {"nested": 1}), ("assistant", "b")), "nested_value", "has a turn (1) whose content is not text"),
    ],
)
def test_unusable_chats_are_skips_with_a_reason(turns, key, detail):
    with pytest.raises(Skip) as info:
        convert(turns)
    assert info.value.key == key and info.value.detail.startswith(detail)


def test_tool_turns_stay_and_the_answer_after_a_tool_result_is_the_output():
    call = [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]
    turns = [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": None, "tool_calls": call},
             {"role": "tool", "content": "4 C"}, {"role": "tool", "content": "windy"},
             {"role": "assistant", "content": "Cold and windy."}]
    example, repairs = convert(turns)
    assert repairs == [] and example.prompt_role == "tool" and example.instruction == "windy"
    assert example.history[0] == ("user", "Weather?") and '"name": "weather"' in example.history[1][1]
    assert example.history[2] == ("tool", "4 C")  # two tool results stay two turns
    assert [m["role"] for m in example.messages()] == ["user", "assistant", "tool", "tool", "assistant"]


def test_preference_rows_train_the_chosen_answer():
    mapping = {"instruction": "prompt", "output": "chosen"}
    assert preference_example({"prompt": "p", "chosen": "good", "rejected": "bad"}, mapping, []) == Example("p", "good")
    full = {"prompt": "2+2?", "chosen": chat(("user", "2+2?"), ("assistant", "4")), "rejected": []}
    assert preference_example(full, mapping, []) == Example("2+2?", "4")
    split = {"prompt": chat(("user", "Colour?")), "chosen": chat(("assistant", "Blue."))}
    assert preference_example(split, mapping, []) == Example("Colour?", "Blue.")
    with pytest.raises(Skip, match="empty output"):
        preference_example({"prompt": "p", "chosen": ""}, mapping, [])


def test_flat_rows_skip_an_empty_answer_and_nested_text():
    mapping = {"instruction": "instruction", "input": "input", "output": "output"}
    assert flat_example({"instruction": "i", "output": 3}, mapping, []) == Example("i", "3")
    with pytest.raises(Skip) as info:
        flat_example({"instruction": "i", "output": "  "}, mapping, [])
    assert info.value.key == "empty_output"
    with pytest.raises(Skip) as info:
        flat_example({"instruction": {"a": 1}, "output": "o"}, mapping, [])
    assert (info.value.key, info.value.detail) == (
        "nested_value", "has a nested list or object in column 'instruction', which must hold text")


@pytest.mark.parametrize(
    "value, text",
    [(None, ""), (3, "3"), (2.5, "2.5"), (True, "true"), (False, "false"), (float("nan"), ""),
     ("line\r\n", "line\n"), ("keep  spaces  ", "keep  spaces  "), ("trailing\r", "trailing")],
)
def test_values_become_text(value, text):
    assert text_value(value, "output") == text


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], b"bytes", object()])
def test_non_text_values_are_skips_naming_the_column(value):
    with pytest.raises(Skip, match=r"in column 'output', which must hold text$"):
        text_value(value, "output")


def test_whitespace_around_flat_texts_is_trimmed_and_counted():
    repairs: list = []
    row = {"instruction": "What is 2+2?\n", "input": "  ", "output": "\n4\n\n"}
    example = flat_example(row, {"instruction": "instruction", "input": "input", "output": "output"}, repairs)
    assert (example.instruction, example.input, example.output) == ("What is 2+2?", "", "4")
    assert repairs == [("whitespace", "has spaces or blank lines around its instruction, input and output (trimmed)")]
    clean: list = []
    flat_example({"instruction": "a b", "output": "c"}, {"instruction": "instruction", "output": "output"}, clean)
    assert clean == []


@pytest.mark.parametrize("text, trimmed", [
    ("  Paris \n", "Paris"),
    ("\n\n    for x in y:\n        pass\n", "    for x in y:\n        pass"),  # code keeps its first indentation
    ("    return x\n", "    return x"),
    (" \t\n ", ""),
    ("no change", "no change"),
])
def test_trim_keeps_code_indentation(text, trimmed):
    assert trim(text) == trimmed
