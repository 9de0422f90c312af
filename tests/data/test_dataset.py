"""Sources (samples, files, Hub ids), filters, seeds, fixed test splits and the too-few-rows sentence."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest

from studio.data.dataset import LoadedDataset, Splits, example_table, load_source, prepare_splits
from studio.data.shapes import Shape
from studio.errors import DataError, HubUnavailableError
from studio.examples import Example
from studio.settings import DataSettings

ALPACA = Shape("alpaca", {"instruction": "instruction", "output": "output"}, "Alpaca.")


def loaded(examples: list[Example], fixed_test: list[Example] | None = None) -> LoadedDataset:
    """A LoadedDataset around ready-made examples."""
    n_rows = len(examples) + len(fixed_test or [])
    return LoadedDataset(examples, ALPACA, "test", ["instruction", "output"], n_rows, fixed_test=fixed_test)


def numbered(n: int, start: int = 0) -> list[Example]:
    """n distinct examples."""
    return [Example(f"task {i}", f"answer {i}") for i in range(start, start + n)]


def settings(**overrides) -> DataSettings:
    """DataSettings with no test cap unless asked, so fractions are easy to check."""
    return DataSettings(**{"max_test_examples": 0, **overrides})


@dataclass(frozen=True)
class FakeSample:
    name: str
    title: str
    description: str
    recommended_template: str
    train: tuple
    test: tuple

    def build(self) -> tuple[list[dict], list[dict]]:
        return list(self.train), list(self.test)


@pytest.fixture()
def fake_samples(monkeypatch):
    """Replace the built-in samples with two small ones."""
    import studio.data.samples

    qa = FakeSample("qa", "Q&A", "Questions.", "question_answer",
                    tuple({"question": f"q{i}", "answer": f"a{i}"} for i in range(10)),
                    tuple({"question": f"q{i}", "answer": f"a{i}"} for i in (0, 1, 20)))
    chat = FakeSample("talk", "Talk", "Chats.", "chatml",
                      ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},),
                      ())
    monkeypatch.setattr(studio.data.samples, "SAMPLES", {"qa": qa, "talk": chat})


def test_load_sample_carries_metadata_and_fixed_test(fake_samples):
    data = load_source("sample:qa")
    assert (data.title, data.description, data.recommended_template) == ("Q&A", "Questions.", "question_answer")
    assert data.shape.name == "question_answer" and data.source == "sample:qa"
    assert data.columns == ["question", "answer"] and data.n_rows == 13
    assert data.examples[0] == Example("q0", "a0")
    assert data.fixed_test == [Example("q0", "a0"), Example("q1", "a1"), Example("q20", "a20")]


def test_sample_without_test_rows_has_no_fixed_test(fake_samples):
    assert load_source("sample:talk").fixed_test is None


def test_unknown_sample_lists_the_names(fake_samples):
    with pytest.raises(DataError, match=r"^Unknown sample 'nope'; the built-in samples are qa, talk\.$"):
        load_source("sample:nope")


def test_load_file_with_column_map(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"q": f"x{i}", "a": f"y{i}"}) for i in range(3)))
    data = load_source(str(path), column_map={"instruction": "q", "output": "a"})
    assert data.shape.name == "mapped" and data.title == "d.jsonl" and data.n_rows == 3
    assert data.examples[2] == Example("x2", "y2") and data.fixed_test is None


def test_missing_file_path_is_a_file_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_source(str(tmp_path / "missing.csv"))


def test_size_cap_passes_through(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"instruction": "a", "output": "b"}] * 100))
    with pytest.raises(DataError, match="above the"):
        load_source(str(path), max_bytes=100)


def test_hub_id_goes_to_the_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match="dataset 'org/name' cannot be downloaded"):
        load_source("org/name", token="hf_secret")


def test_empty_spec():
    with pytest.raises(DataError, match="No dataset was chosen"):
        load_source("  ")


def test_real_samples_load_and_split():
    from studio.data import samples

    assert samples.SAMPLES
    for name in samples.SAMPLES:
        data = load_source(f"sample:{name}")
        splits = prepare_splits(data, DataSettings())
        assert data.fixed_test and splits.train and splits.test
        assert len(splits.test) <= DataSettings().max_test_examples


def test_counts_and_fractions():
    splits = prepare_splits(loaded(numbered(100)), settings(test_fraction=0.2, validation_fraction=0.1))
    assert splits.counts == {"rows": 100, "dropped_with_input": 0, "dropped_empty": 0, "dropped_duplicates": 0,
                             "dropped_overlap": 0, "train": 70, "test": 20, "validation": 10}
    assert len(set(splits.train) | set(splits.test) | set(splits.validation)) == 100


def test_same_seed_same_splits_other_seed_other_splits():
    first = prepare_splits(loaded(numbered(50)), settings(seed=7))
    assert prepare_splits(loaded(numbered(50)), settings(seed=7)) == first
    assert prepare_splits(loaded(numbered(50)), settings(seed=8)).test != first.test


def test_no_shuffle_keeps_order_and_tests_on_the_tail():
    splits = prepare_splits(loaded(numbered(10)), settings(shuffle=False, test_fraction=0.2))
    assert splits.train == numbered(8) and splits.test == numbered(2, start=8)


def test_drop_with_input_keeps_only_empty_inputs():
    rows = [Example("a", "1"), Example("b", "2", input="x"), Example("c", "3", input="  "), Example("d", "4")]
    splits = prepare_splits(loaded(rows), settings(drop_with_input=True))
    assert splits.counts["dropped_with_input"] == 1
    assert all(not e.input.strip() for e in splits.train + splits.test)


def test_drop_empty_on_and_off():
    rows = numbered(4) + [Example("", "x"), Example("y", " \n")]
    assert prepare_splits(loaded(rows), settings()).counts["dropped_empty"] == 2
    assert prepare_splits(loaded(rows), settings(drop_empty=False)).counts["train"] == 5


def test_dedupe_on_and_off():
    rows = numbered(3) * 2
    assert prepare_splits(loaded(rows), settings()).counts["dropped_duplicates"] == 3
    assert prepare_splits(loaded(rows), settings(dedupe=False)).counts["dropped_duplicates"] == 0


def test_max_examples_takes_first_n_after_shuffling():
    splits = prepare_splits(loaded(numbered(100)), settings(max_examples=10))
    assert len(splits.train) + len(splits.test) == 10
    assert splits.train + splits.test != numbered(10)  # Shuffled first, not the file's first ten.


def test_test_cap_sends_the_rest_to_training():
    splits = prepare_splits(loaded(numbered(100)), settings(test_fraction=0.5, max_test_examples=5))
    assert (len(splits.train), len(splits.test)) == (95, 5)


def test_fixed_test_is_the_test_split_without_leakage():
    test = [Example("task 1", "other answer"), Example("task 2", "answer 2"), Example("new", "n")]
    splits = prepare_splits(loaded(numbered(10), fixed_test=test), settings(validation_fraction=0.2))
    assert sorted(splits.test, key=lambda e: e.instruction) == sorted(test, key=lambda e: e.instruction)
    prompts = {e.instruction for e in splits.train + splits.validation}
    assert not prompts & {"task 1", "task 2", "new"}
    assert splits.counts["dropped_overlap"] == 2
    assert (splits.counts["train"], splits.counts["validation"]) == (6, 2)


def test_fixed_test_is_filtered_and_capped():
    test = numbered(30, start=100) + [Example("", "empty")]
    splits = prepare_splits(loaded(numbered(5), fixed_test=test), settings(max_test_examples=24))
    assert len(splits.test) == 24 and all(e.instruction for e in splits.test)
    assert splits.counts["dropped_empty"] == 1


def test_fixed_test_emptied_by_filters():
    with pytest.raises(DataError, match=r"^No rows of the test split remain after dropping rows with an empty"):
        prepare_splits(loaded(numbered(5), fixed_test=[Example("q", "")]), settings())


def test_every_output_empty_says_which_filter():
    rows = [Example(f"q{i}", "") for i in range(5)]
    with pytest.raises(DataError, match=r"^No rows remain after dropping rows with an empty instruction or output "
                       r"\(of 5 loaded\), but at least 2 are needed, one to train on and one to test; check which "
                       r"column holds the output\.$"):
        prepare_splits(loaded(rows), settings())


def test_one_row_left_after_dedupe():
    with pytest.raises(DataError, match=r"^Only 1 row remains after dropping duplicate rows \(of 3 loaded\)"):
        prepare_splits(loaded([Example("a", "b")] * 3), settings())


def test_validation_needs_a_third_row():
    with pytest.raises(DataError, match=r"^Only 2 rows remain in the data \(of 2 loaded\), but at least 3 are needed"):
        prepare_splits(loaded(numbered(2)), settings(validation_fraction=0.1))


def test_all_training_rows_leak_into_fixed_test():
    with pytest.raises(DataError, match="after dropping training rows that also appear in the test split"):
        prepare_splits(loaded(numbered(3), fixed_test=numbered(3)), settings())


def test_zero_test_fraction_still_holds_out_one_row():
    splits = prepare_splits(loaded(numbered(10)), settings(test_fraction=0.0))
    assert (len(splits.train), len(splits.test)) == (9, 1)


def test_two_rows_are_enough():
    splits = prepare_splits(loaded(numbered(2)), settings(test_fraction=0.9))
    assert (len(splits.train), len(splits.test)) == (1, 1)


def test_splits_positional_fields_match_the_contract():
    assert [f.name for f in dataclasses.fields(Splits)][:3] == ["train", "test", "validation"]


def test_example_table_clips_long_text():
    table = example_table([Example("x" * 500, "y", input="z")] + numbered(30), n=20)
    assert len(table) == 20 and set(table[0]) == {"instruction", "input", "output"}
    assert len(table[0]["instruction"]) == 200 and table[0]["instruction"].endswith("…")
    assert table[0]["input"] == "z"
