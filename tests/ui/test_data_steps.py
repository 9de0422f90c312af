"""The Data tab's one loading path: Load data, Apply mapping and the demo all read a source through it."""
from __future__ import annotations

import pytest

from studio.errors import DataError, ShapeError
from studio.settings import StudioSettings
from ui import data_steps as steps
from ui.services import Services
from ui.state import SessionState


@pytest.fixture
def services(tmp_path):
    return Services(runs_root=tmp_path / "runs")


def test_a_sample_loads_splits_and_recommends_its_own_template(services):
    state, settings = SessionState(), StudioSettings()
    template = steps.load_into_state(services, state, settings, steps.sample_spec("product_docs"))
    assert template == "question_answer" and state.spec == "sample:product_docs"
    assert state.splits is not None and state.examples() == list(state.splits.train)
    assert "train" in steps.counts(state) and len(steps.table(state)) > 0


def test_a_file_with_unknown_columns_keeps_its_spec_for_the_mapping_then_loads_mapped(services, tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("question_text,reply\n" + "".join(f"say {w},{w}\n" for w in "abcdefghij"))
    state, settings = SessionState(), StudioSettings()
    with pytest.raises(ShapeError) as err:
        steps.load_into_state(services, state, settings, str(data))
    assert err.value.columns == ["question_text", "reply"]
    assert state.spec == str(data) and state.loaded is None and steps.counts(state).startswith("Load a dataset")
    mapping = {"instruction": "question_text", "input": "", "output": "reply"}
    template = steps.load_into_state(services, state, settings, column_map=mapping)
    assert template == settings.data.template  # a mapping made by hand recommends no template
    assert state.column_map == mapping and state.examples()[0].instruction.startswith("say ")


def test_a_failed_remap_keeps_what_was_loaded(services, tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("instruction,output,other\n" + "".join(f"say {w},{w},x\n" for w in "abcdefghij"))
    state, settings = SessionState(), StudioSettings()
    steps.load_into_state(services, state, settings, str(data))
    loaded = state.loaded
    with pytest.raises(DataError):
        steps.load_into_state(services, state, settings, column_map={"instruction": "missing", "output": "other"})
    assert state.loaded is loaded and state.column_map == {}


def test_the_chosen_template_gives_way_to_the_datas_unless_it_has_none(services):
    settings = StudioSettings()
    settings.data.template = "alpaca"
    assert steps.load_into_state(services, SessionState(), settings, steps.sample_spec("chat")) == "chat"
    assert steps.load_into_state(services, SessionState(), settings, steps.sample_spec("word_tasks")) == (
        "instruction_output")


def test_an_upload_is_size_checked_and_copied_into_the_sessions_folder(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    state = SessionState()
    spec = steps.source_spec(state, steps.SOURCES[1], "", str(data), None, max_bytes=10_000)
    assert spec.startswith(state.upload_dir) and open(spec).read() == data.read_text()
    with pytest.raises(DataError, match="Choose a file"):
        steps.source_spec(state, steps.SOURCES[1], "", None, None, max_bytes=10_000)
    with pytest.raises(DataError):
        steps.source_spec(state, steps.SOURCES[1], "", str(data), None, max_bytes=3)
    assert steps.source_spec(state, steps.SOURCES[2], "", None, " org/name ", 1) == "org/name"


def test_the_row_counts_say_how_many_held_out_prompts_look_like_training_prompts(services, tmp_path):
    import json

    state, settings = SessionState(), StudioSettings()
    steps.load_into_state(services, state, settings, steps.sample_spec("word_tasks"))
    assert "look like" not in steps.counts(state)  # the demo's held-out rows are all new prompts
    question = "Which plan includes priority support and how do I upgrade to it from the free plan in the app?"
    rows = [{"instruction": f"Question {i}: {question}", "output": "Team."} for i in range(10)]
    rows += [{"instruction": f"question {i} {question.lower()}", "output": "The Team plan."} for i in range(10)]
    data = tmp_path / "twice.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = StudioSettings.from_dict({"data": {"test_fraction": 0.5, "shuffle": False}})
    steps.load_into_state(services, state, settings, str(data))
    assert steps.counts(state).endswith("\n10 held-out prompts look like training prompts (left out of the headline).")
