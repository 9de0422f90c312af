"""Shape detection for every supported dataset shape and explicit mappings (conversion: test_rows, test_convert)."""
from __future__ import annotations

import pytest

from studio.data.convert import to_examples
from studio.data.shapes import Shape, column_names, detect_shape
from studio.errors import DataError
from studio.examples import Example


def chat(*turns: tuple[str, str], keys: tuple[str, str] = ("role", "content")) -> list[dict]:
    """Turns as a list of {role, content} (or ShareGPT {from, value}) dicts."""
    return [{keys[0]: role, keys[1]: content} for role, content in turns]


@pytest.mark.parametrize(
    "row, name, mapping",
    [
        ({"instruction": "i", "input": "x", "output": "o"}, "alpaca",
         {"instruction": "instruction", "input": "input", "output": "output"}),
        ({"instruction": "i", "output": "o"}, "alpaca", {"instruction": "instruction", "output": "output"}),
        ({"instruction": "i", "response": "o"}, "alpaca", {"instruction": "instruction", "output": "response"}),
        ({"question": "q", "answer": "a"}, "question_answer", {"instruction": "question", "output": "answer"}),
        ({"question": "q", "context": "c", "answer": "a"}, "question_answer",
         {"instruction": "question", "input": "context", "output": "answer"}),
        ({"prompt": "p", "completion": "c"}, "prompt_completion", {"instruction": "prompt", "output": "completion"}),
        ({"prompt": "p", "response": "r"}, "prompt_response", {"instruction": "prompt", "output": "response"}),
        ({"act": "Linux Terminal", "prompt": "I want you to act..."}, "act_prompt",
         {"instruction": "act", "output": "prompt"}),
        ({"messages": chat(("user", "u"), ("assistant", "a"))}, "messages", {"messages": "messages"}),
        ({"conversations": chat(("human", "u"), ("gpt", "a"), keys=("from", "value"))}, "sharegpt",
         {"messages": "conversations"}),
        ({"instruction": "i", "context": "c", "response": "r", "category": "open_qa"}, "dolly",
         {"instruction": "instruction", "input": "context", "output": "response"}),
        ({"prompt": "p", "chosen": "c", "rejected": "r"}, "preference", {"instruction": "prompt", "output": "chosen"}),
        ({"message_id": "m", "parent_id": None, "message_tree_id": "t", "role": "prompter", "text": "hi", "rank": 0},
         "oasst", {"text": "text", "role": "role", "group": "message_tree_id", "id": "message_id",
                   "parent": "parent_id", "rank": "rank"}),
        ({"conversation_id": 1, "role": "user", "text": "hi"}, "oasst",
         {"text": "text", "role": "role", "group": "conversation_id"}),
    ],
)
def test_every_shape_is_detected(row, name, mapping):
    shape = detect_shape([row])
    assert (shape.name, shape.mapping) == (name, mapping)
    assert shape.reason.endswith(".") and "\n" not in shape.reason


def test_alpaca_reason_sentence():
    shape = detect_shape([{"instruction": "i", "input": "", "output": "o"}])
    assert shape.reason == ("Columns 'instruction', 'input' and 'output' found: "
                            "Alpaca shape (instruction + optional input -> output).")


def test_column_names_matched_case_insensitively_and_trimmed():
    shape = detect_shape([{" Instruction ": "i", "OUTPUT": "o", "System": "s"}])
    assert shape.mapping == {"instruction": " Instruction ", "output": "OUTPUT", "system": "System"}
    assert to_examples([{" Instruction ": "i", "OUTPUT": "o", "System": "s"}], shape) == [
        Example(instruction="i", output="o", system="s")]


def test_chat_column_wins_over_flat_columns():
    rows = [{"messages": chat(("user", "u"), ("assistant", "a")), "instruction": "x", "output": "y"}]
    assert detect_shape(rows).name == "messages"


def test_unknown_columns_name_them_and_ask_for_a_mapping():
    with pytest.raises(DataError, match=r"^No known dataset shape fits the columns 'text' and 'label'; map which "
                       r"column is the instruction and which is the output\.$"):
        detect_shape([{"text": "t", "label": 1}])


def test_many_unknown_columns_are_clipped():
    with pytest.raises(DataError, match=r"and 12 more; map"):
        detect_shape([{f"c{i}": i for i in range(20)}])


def test_explicit_mapping():
    rows = [{"Q": "What?", "Ctx": "c", "A": "That.", "Sys": "Be brief."}]
    shape = detect_shape(rows, {"instruction": "q", "input": "Ctx", "output": "A", "system": "Sys"})
    assert shape.name == "mapped"
    assert shape.mapping == {"instruction": "Q", "input": "Ctx", "output": "A", "system": "Sys"}
    assert "'Q' as instruction" in shape.reason
    assert to_examples(rows, shape) == [Example("What?", "That.", input="c", system="Be brief.")]


def test_mapping_with_empty_roles_ignores_them():
    shape = detect_shape([{"a": "1", "b": "2"}], {"instruction": "a", "input": "", "output": "b", "system": None})
    assert shape.mapping == {"instruction": "a", "output": "b"}


def test_mapping_with_only_empty_choices_detects_the_shape():
    shape = detect_shape([{"question": "q", "answer": "a"}], {"instruction": "", "input": "", "output": None})
    assert shape.name == "question_answer"


def test_mapping_overrides_a_detected_shape():
    rows = [{"instruction": "i", "output": "o", "better": "b"}]
    assert detect_shape(rows, {"instruction": "instruction", "output": "better"}).mapping["output"] == "better"


@pytest.mark.parametrize(
    "column_map, message",
    [
        ({"instruction": "q", "output": "missing"}, r"Column 'missing' \(mapped to output\) is not in the data"),
        ({"instruction": "q"}, "must name both the instruction column and the output column"),
        ({"instruction": "q", "output": "a", "label": "a"}, "unknown role 'label'"),
        ({"instruction": "q", "output": "Q"}, "uses 'q' as both instruction and output"),
    ],
)
def test_bad_mappings(column_map, message):
    with pytest.raises(DataError, match=message):
        detect_shape([{"q": "x", "a": "y"}], column_map)


def test_other_rows_spelling_of_a_column_is_tolerated():
    rows = [{"Instruction": "a", "Output": "b"}, {"instruction": "c", "output": "d"}]
    assert [e.output for e in to_examples(rows, detect_shape(rows))] == ["b", "d"]


def test_act_prompt_maps_act_to_instruction():
    rows = [{"act": "Linux Terminal", "prompt": "I want you to act as a linux terminal."}]
    expected = [Example("Linux Terminal", "I want you to act as a linux terminal.")]
    assert to_examples(rows, detect_shape(rows)) == expected


@pytest.mark.parametrize("rows", [[], [1, 2], "rows", [{"a": 1}, "b"]])
def test_rows_must_be_a_list_of_objects(rows):
    with pytest.raises(DataError):
        column_names(rows)
    with pytest.raises(DataError):
        to_examples(rows, Shape("alpaca", {"instruction": "a", "output": "b"}, "."))


def test_shape_without_instruction_or_output_is_refused():
    with pytest.raises(DataError, match="does not say which column is the instruction"):
        to_examples([{"a": 1}], Shape("custom", {"input": "a"}, "."))
