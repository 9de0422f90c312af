"""Reading rows from every supported file format and variant, and from the Hub (faked: no network here)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio.data.hub import MAX_HUB_ROWS, load_hub_rows
from studio.data.loaders import iter_file_rows, megabytes, quote, read_rows
from studio.data.summary import RowLog
from studio.errors import DataError, HubUnavailableError

ROWS = [{"instruction": "Say hi", "input": "", "output": "Hi"}, {"instruction": "Count", "input": "a b", "output": "2"}]


def write(tmp_path, name: str, content: str | bytes):
    """Write text (UTF-8) or bytes to tmp_path/name and return the path."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_json_array(tmp_path):
    assert read_rows(write(tmp_path, "d.json", json.dumps(ROWS))) == ROWS


@pytest.mark.parametrize("key", ["data", "train", "rows", "examples"])
def test_json_object_wrapping_a_list(tmp_path, key):
    assert read_rows(write(tmp_path, "d.json", json.dumps({key: ROWS, "version": 2}))) == ROWS


def test_json_wrapper_prefers_train_over_test(tmp_path):
    path = write(tmp_path, "d.json", json.dumps({"test": ROWS[1:], "train": ROWS[:1]}))
    assert read_rows(path) == ROWS[:1]


def test_json_column_oriented(tmp_path):
    columns = {"instruction": ["Say hi", "Count"], "input": ["", "a b"], "output": ["Hi", "2"]}
    assert read_rows(write(tmp_path, "d.json", json.dumps(columns))) == ROWS


def test_json_single_chat_object_is_one_row(tmp_path):
    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    assert read_rows(write(tmp_path, "chat.json", json.dumps(chat))) == [chat]


def test_json_single_flat_object_is_one_row(tmp_path):
    assert read_rows(write(tmp_path, "one.json", json.dumps(ROWS[0]))) == ROWS[:1]


def test_json_file_holding_json_lines_still_loads(tmp_path):
    text = "\n".join(json.dumps(r) for r in ROWS)
    assert read_rows(write(tmp_path, "d.json", text)) == ROWS


@pytest.mark.parametrize("name", ["d.jsonl", "d.ndjson", "D.JSONL"])
def test_jsonl(tmp_path, name):
    text = "\n".join(json.dumps(r) for r in ROWS) + "\n\n"
    assert read_rows(write(tmp_path, name, text)) == ROWS


def test_jsonl_with_crlf_and_blank_lines(tmp_path):
    text = "\r\n".join(["", json.dumps(ROWS[0]), "   ", json.dumps(ROWS[1]), ""])
    assert read_rows(write(tmp_path, "d.jsonl", text)) == ROWS


def test_malformed_json_says_line_and_column(tmp_path):
    with pytest.raises(DataError, match=r"not valid JSON: .* at line 2, column 10\.$"):
        read_rows(write(tmp_path, "bad.json", '[{"a": 1},\n {"b": 2,}]'))


def test_malformed_jsonl_line_is_skipped_and_counted(tmp_path):
    log = RowLog()
    rows = list(iter_file_rows(write(tmp_path, "bad.jsonl", '{"a": 1}\n{"a": 2}\n{"a": 3\n'), log))
    assert [row for _, row, _ in rows] == [{"a": 1}, {"a": 2}]
    assert log.counts == {"bad_json": 1} and log.notes["bad_json"][0].detail.startswith("(line 3) is not valid JSON")


def test_jsonl_line_that_is_not_an_object_is_skipped(tmp_path):
    log = RowLog()
    rows = list(iter_file_rows(write(tmp_path, "d.jsonl", '{"a": 1}\n\n[1, 2]\n'), log))
    assert [number for number, _, _ in rows] == [1]
    assert log.notes["not_object"][0].detail == "(line 3) is a list, not a JSON object"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiters_are_sniffed(tmp_path, delimiter):
    lines = [["instruction", "input", "output"], ["Say hi", "", "Hi"], ["Count", "a b", "2"]]
    text = "\n".join(delimiter.join(cells) for cells in lines) + "\n"
    assert read_rows(write(tmp_path, "d.csv", text)) == ROWS


def test_tsv_with_commas_inside_cells(tmp_path):
    text = "instruction\toutput\nList a, b, c\tx, y, z\nOne, two\tthree, four\n"
    rows = read_rows(write(tmp_path, "d.tsv", text))
    assert rows == [{"instruction": "List a, b, c", "output": "x, y, z"},
                    {"instruction": "One, two", "output": "three, four"}]


def test_csv_quoted_fields_with_newlines_and_delimiters(tmp_path):
    text = 'instruction,output\r\n"Write a poem, short","Roses\r\nare red"\r\n'
    expected = [{"instruction": "Write a poem, short", "output": "Roses\r\nare red"}]
    assert read_rows(write(tmp_path, "d.csv", text)) == expected


def test_csv_header_names_trimmed_and_blank_ones_named(tmp_path):
    rows = read_rows(write(tmp_path, "d.csv", " instruction , ,output\na,b,c\n"))
    assert rows == [{"instruction": "a", "column_2": "b", "output": "c"}]


def test_csv_leading_blank_lines_are_not_the_header(tmp_path):
    assert read_rows(write(tmp_path, "d.csv", "\n\ninstruction,output\na,b\n")) == [{"instruction": "a", "output": "b"}]


def test_csv_ragged_rows_are_padded_trimmed_or_skipped(tmp_path):
    log = RowLog()
    rows = list(iter_file_rows(write(tmp_path, "d.csv", "a,b\n1,2\n3,4,5\n6\n7,8,,\n"), log))
    assert [(n, row) for n, row, _ in rows] == [(1, {"a": "1", "b": "2"}), (3, {"a": "6", "b": ""}),
                                                (4, {"a": "7", "b": "8"})]
    assert [repairs[0][0] for _, _, repairs in rows if repairs] == ["short_row", "extra_empty_cells"]
    assert log.counts == {"long_row": 1} and log.notes["long_row"][0].detail == "(line 3) has 3 values but the header has 2"


def test_csv_wrong_delimiter_single_column(tmp_path):
    with pytest.raises(DataError, match="reads as a single column"):
        read_rows(write(tmp_path, "d.csv", "instruction output\nsay hi\nhello there\n"))


def test_csv_utf8_bom(tmp_path):
    rows = read_rows(write(tmp_path, "d.csv", b"\xef\xbb\xbfinstruction,output\nCaf\xc3\xa9,ok\n"))
    assert rows == [{"instruction": "Café", "output": "ok"}]


def test_json_utf8_bom(tmp_path):
    assert read_rows(write(tmp_path, "d.json", b"\xef\xbb\xbf" + json.dumps(ROWS).encode())) == ROWS


def test_latin1_csv_decodes(tmp_path):
    rows = read_rows(write(tmp_path, "d.csv", "instruction;output\nCafé crème;naïve Æsir ©\n".encode("latin-1")))
    assert rows == [{"instruction": "Café crème", "output": "naïve Æsir ©"}]


def test_windows_1252_quotes_decode(tmp_path):
    rows = read_rows(write(tmp_path, "d.csv", "instruction,output\n\u201cquoted\u201d,\u20ac5\n".encode("cp1252")))
    assert rows == [{"instruction": "\u201cquoted\u201d", "output": "\u20ac5"}]


def test_utf16_with_bom_decodes(tmp_path):
    rows = read_rows(write(tmp_path, "d.tsv", "instruction\toutput\nhi\tthere\n".encode("utf-16")))
    assert rows == [{"instruction": "hi", "output": "there"}]


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    assert read_rows(path) == ROWS


def test_parquet_with_chat_lists(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}]
    path = tmp_path / "chat.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert read_rows(path) == rows


def test_parquet_with_no_rows(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"instruction": pa.array([], pa.string())}), path)
    with pytest.raises(DataError, match="has columns but no rows"):
        read_rows(path)


def test_size_cap_checked_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.jsonl"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # Sparse: 200 MB on paper, nothing written.
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("the file was read"))
    with pytest.raises(DataError, match=r"^File 'big.jsonl' is 200\.0 MB, above the 50\.0 MB limit"):
        read_rows(path, max_bytes=50 * 1024 * 1024)


def test_file_within_cap_loads(tmp_path):
    path = write(tmp_path, "d.json", json.dumps(ROWS))
    assert read_rows(path, max_bytes=path.stat().st_size) == ROWS


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"^File 'nope.csv' does not exist\.$"):
        read_rows(tmp_path / "nope.csv")


def test_folder_is_not_a_file(tmp_path):
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(DataError, match="is a folder, not a file"):
        read_rows(tmp_path / "folder.json")


def test_helpers_make_one_line_text():
    assert quote("a\nb") == "'a b'"
    assert quote("x" * 100, limit=5) == "'xxxxx...'"
    assert megabytes(200 * 1024 * 1024) == "200.0 MB"
    assert megabytes(1000) == "0.001 MB"


def test_hub_offline_is_hub_unavailable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match=r"^The Hugging Face Hub cannot be reached from this machine, "
                       r"so dataset 'tatsu-lab/alpaca' cannot be downloaded; upload it as a file"):
        load_hub_rows("tatsu-lab/alpaca", token="hf_secret")


@pytest.mark.parametrize("bad_id", ["../etc", "has space/x", "", "a/b/c", "org/../x", "-x/y", "a--b/c"])
def test_hub_id_validated_first(bad_id):
    with pytest.raises(DataError, match="is not a valid Hugging Face dataset id"):
        load_hub_rows(bad_id)


def test_hub_split_validated():
    with pytest.raises(DataError, match="is not a valid split name"):
        load_hub_rows("org/name", split="train[:10]")


@pytest.fixture()
def online(monkeypatch):
    """A fake Hub: returns a setter for what the patched datasets.load_dataset does."""
    import datasets

    calls = []

    def use(behaviour):
        def fake_load_dataset(dataset_id, split, token=None):
            calls.append((dataset_id, split, token))
            if isinstance(behaviour, Exception):
                raise behaviour
            return datasets.Dataset.from_list(behaviour)
        monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
        return calls
    return use


def test_hub_rows_loaded_through_load_dataset_with_a_row_cap(online):
    calls = online(ROWS)
    assert load_hub_rows("org/name", split="test", token="hf_x") == ROWS
    assert calls == [("org/name", f"test[:{MAX_HUB_ROWS}]", "hf_x")]


def test_hub_missing_dataset_is_data_error_without_token(online):
    from datasets.exceptions import DatasetNotFoundError

    online(DatasetNotFoundError("Dataset 'org/none' doesn't exist on the Hub (token hf_secret)"))
    with pytest.raises(DataError, match="was not found on the Hugging Face Hub") as info:
        load_hub_rows("org/none", token="hf_secret")
    assert "hf_secret" not in str(info.value)


def test_hub_gated_dataset_asks_for_a_token(online):
    from datasets.exceptions import DatasetNotFoundError

    online(DatasetNotFoundError("Dataset 'org/g' is a gated dataset on the Hub. You must be authenticated."))
    with pytest.raises(DataError, match=r"^Dataset 'org/g' is gated; accept its terms"):
        load_hub_rows("org/g")


def test_hub_missing_split_lists_the_splits(online):
    online(ValueError("Unknown split \"dev\". Should be one of ['train', 'test']."))
    with pytest.raises(DataError, match=r"^Dataset 'org/name' has no split 'dev' \(it has 'train', 'test'\)\.$"):
        load_hub_rows("org/name", split="dev")


@pytest.mark.parametrize("exc", [ConnectionError("Couldn't reach 'x' on the Hub (LocalEntryNotFoundError)"),
                                 TimeoutError("read timed out")])
def test_hub_connection_errors_are_hub_unavailable(online, exc):
    online(exc)
    with pytest.raises(HubUnavailableError, match="cannot be reached"):
        load_hub_rows("org/name", token="hf_secret")


def test_hub_other_failures_are_one_sentence(online):
    online(RuntimeError("boom\nTraceback (most recent call last): token=hf_secret"))
    with pytest.raises(DataError, match=r"^Dataset 'org/name' could not be loaded from the Hub \(RuntimeError\)\.$"):
        load_hub_rows("org/name", token="hf_secret")


def test_hub_empty_split(online):
    online([])
    with pytest.raises(DataError, match="has no rows"):
        load_hub_rows("org/name")
