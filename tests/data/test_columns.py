"""The table of common column names, the refusals that name the candidates, and each surface's fix line."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from studio import cli
from studio.data.columns import ROLE_NAMES, fix_for_cli, fix_for_ui, guess_roles, map_flags
from studio.data.dataset import load_source
from studio.data.shapes import detect_shape
from studio.errors import DataError


@pytest.mark.parametrize("instruction, output", [
    ("question", "expected_answer"), ("query", "response"), ("prompt", "target"), ("input_text", "output_text"),
    ("Query", "SQL"), ("Problem", "Solution"), ("user_input", "reference"), ("Question", "Ground Truth"),
    ("input", "output"),
])
def test_common_names_are_read_when_unambiguous(instruction, output):
    shape = detect_shape([{instruction: "Say hi.", output: "Hi.", "id": 1}])
    assert shape.name == "common_names" and shape.mapping == {"instruction": instruction, "output": output}
    assert shape.reason == (f"Columns taken by their common names: '{instruction}' as instruction, '{output}' as "
                            "output.")


def test_known_shapes_still_win_over_the_table():
    assert detect_shape([{"question": "q", "answer": "a"}]).name == "question_answer"
    assert detect_shape([{"prompt": "p", "completion": "c"}]).name == "prompt_completion"


def test_context_and_system_columns_join_a_common_names_shape():
    shape = detect_shape([{"query": "q", "passage": "p", "reply": "r", "system_prompt": "s"}])
    assert shape.mapping == {"instruction": "query", "output": "reply", "input": "passage", "system": "system_prompt"}


@pytest.mark.parametrize("row, fragment", [
    ({"question": "q", "query": "q2", "answer_text": "a", "solution": "s"},
     "and 'question' and 'query' could each be the instruction; map which column"),
    ({"question": "q", "answer_0": "a", "answer_1": "b"},
     "and none is named like an answer, though 'answer_0' and 'answer_1' could hold it; map which column"),
    ({"question_text": "q", "reply": "r"},
     "and 'reply' looks like the answer but no column is named like the instruction; map which column"),
])
def test_ambiguous_columns_ask_naming_the_candidates(row, fragment):
    with pytest.raises(DataError) as info:
        detect_shape([row])
    assert str(info.value).startswith("No known dataset shape fits the columns") and fragment in str(info.value)


def test_every_name_in_the_table_is_unique_and_normalised():
    names = [n for role in ROLE_NAMES.values() for n in role]
    assert len(names) == len(set(names)) and all(n == n.lower().replace(" ", "_") for n in names)
    assert guess_roles(["Expected Answer", "prompt"]).exact["output"] == ["Expected Answer"]


def test_the_cli_fix_names_the_real_columns():
    assert fix_for_cli(["id", "question", "answer_0", "answer_1"]) == (
        "say which column is which, e.g. --map instruction=question --map output=answer_0 (roles: instruction, "
        "input, output, system; the file's columns: id, question, answer_0, answer_1).")
    assert "--map 'output=Best Answer'" in fix_for_cli(["Question", "Best Answer", "Correct Answers"])
    assert fix_for_cli(["query", "memories"]) == (
        "if one of the columns does hold the answers, name it: --map instruction=query --map output=COLUMN (COLUMN "
        "one of memories).")
    assert fix_for_cli(["messages"]) == "" and fix_for_cli([]) == ""


def test_the_ui_fix_points_at_the_column_mapping():
    assert fix_for_ui(["text", "label"]) == ("Choose the columns under Column mapping below (for example Instruction "
                                             "= 'text' and Output = 'label'), then press Apply mapping.")
    assert fix_for_ui(["query"]).startswith("If one of the columns does hold the answers, choose it as the Output")
    assert fix_for_ui(["conversations"]) == ""


def test_map_flags_spell_a_flat_mapping_only():
    assert map_flags({"instruction": "Query", "output": "SQL"}) == "--map instruction=Query --map output=SQL"
    assert map_flags({"messages": "messages"}) == ""


def test_the_cli_prints_the_fix_after_a_refusal(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "pairs.csv").write_text("text,label\nhello,1\nbye,0\n")
    assert cli.main(["inspect", "files/pairs.csv"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: No known dataset shape fits the columns 'text' and 'label'; map which column is the "
                   "instruction and which is the output.",
                   "hint: say which column is which, e.g. --map instruction=text --map output=label (roles: "
                   "instruction, input, output, system; the file's columns: text, label)."]
    assert cli.main(["inspect", "files/missing.csv"]) == 2
    assert capsys.readouterr().err == "error: File 'files/missing.csv' does not exist.\n"


def test_inspect_prints_the_mapping_and_help_lists_the_roles(tmp_path, capsys):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"question": "Say hi.", "expected_answer": "Hi.\n"}) + "\n")
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mapping: --map instruction=question --map output=expected_answer" in out
    assert "1 repaired (whitespace trimmed)" in out
    for command in ("inspect", "train"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "instruction (the prompt or question), input (optional extra context" in text
        assert "output (the answer the model learns to give)" in text and ".gz/.bz2/.xz/.zst" in text


def test_pandas_layouts_keyed_by_id_load_as_rows(tmp_path):
    frame = pd.DataFrame({"question": ["Say hi.", "Say no."], "answer": ["Hi.", "No."]}, index=["q1", "q2"])
    by_id = tmp_path / "by_id.json"
    frame.to_json(by_id, orient="index")
    loaded = load_source(str(by_id))
    assert loaded.columns == ["id", "question", "answer"] and [e.output for e in loaded.examples] == ["Hi.", "No."]
    assert "read the JSON object's 2 entries as rows keyed by id (the keys are in column 'id')" in loaded.summary.line()
    by_column = tmp_path / "by_column.json"
    frame.reset_index(drop=True).to_json(by_column)  # pandas' default: {column: {row number: value}}
    loaded = load_source(str(by_column))
    assert [e.instruction for e in loaded.examples] == ["Say hi.", "Say no."]
    assert "columns of numbered values" in loaded.summary.line()
