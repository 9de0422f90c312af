"""A corpus of bad inputs: each must end in one typed, one-sentence error (and odd-but-fine inputs must load)."""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio.data.dataset import load_source, prepare_splits
from studio.errors import DataError, HubUnavailableError, StudioError
from studio.settings import DataSettings


def rows_json(*rows: dict) -> bytes:
    return json.dumps(list(rows)).encode()


def jsonl(*rows: object) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def chat(*roles: str) -> dict:
    return {"messages": [{"role": r, "content": f"{r} says"} for r in roles]}


def parquet_bytes(rows: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


GOOD = {"instruction": "Say hi", "output": "Hi"}

# (content, filename, expected exception, substring of the message)
CASES = [
    pytest.param(b'[{"instruction": "a", "output": "b"},]', "trailing_comma.json", DataError,
                 "is not valid JSON: expecting value at line 1, column 38", id="json-trailing-comma"),
    pytest.param(b'[{"instruction": "a"', "truncated.json", DataError,
                 "is cut off before its first record ends, so it holds no complete record", id="json-truncated"),
    pytest.param(b"{oops\n[1]\n", "nothing.jsonl", DataError,
                 "has no line that is a JSON object; row 1 (line 1) is not valid JSON", id="jsonl-no-object-line"),
    pytest.param(b"{'instruction': 'a'}", "single_quotes.json", DataError, "is not valid JSON",
                 id="json-single-quotes"),
    pytest.param(b"[" * 200_000, "deep.json", DataError, "nests JSON too deeply", id="json-too-deep"),
    pytest.param(b"42", "number.json", DataError, "holds a single JSON number, not a list of rows", id="json-number"),
    pytest.param(b'"hello"', "string.json", DataError, "holds a single JSON string", id="json-string"),
    pytest.param(b"[]", "empty_list.json", DataError, "holds an empty list", id="json-empty-list"),
    pytest.param(b"{}", "empty_object.json", DataError, "holds an empty JSON object", id="json-empty-object"),
    pytest.param(b'["a", "b"]', "strings.json", DataError, "Item 1 of the JSON array in 'strings.json' is a string",
                 id="json-array-of-strings"),
    pytest.param(b'{"instruction": ["a", "b"], "output": ["x"]}', "columns.json", DataError,
                 "columns differ in length ('output' has 1 value, 'instruction' has 2)", id="json-ragged-columns"),
    pytest.param(b'{"meta": {"v": 1}, "n": [1]}', "odd_object.json", DataError,
                 "neither a list of rows", id="json-odd-object"),
    pytest.param(b"  \n\n \t\n", "blank.jsonl", DataError, "is empty", id="jsonl-whitespace-only"),
    pytest.param(b"", "empty.json", DataError, "File 'empty.json' is empty", id="empty-json"),
    pytest.param(b"", "empty.csv", DataError, "File 'empty.csv' is empty", id="empty-csv"),
    pytest.param(b"instruction,output\n", "header.csv", DataError, "has only a header row and no data rows",
                 id="csv-only-header"),
    pytest.param(b"instruction,output\n\n\n", "header_blank.csv", DataError, "has only a header row",
                 id="csv-header-and-blank-lines"),
    # The quote never closes: garbled, not an empty output (lines it swallowed would be read again as rows).
    pytest.param(b'instruction,output\n"never closed,x\n', "quote.csv", DataError,
                 "its only row was skipped (1 garbled CSV row)", id="csv-unclosed-quote"),
    pytest.param(b"instruction output\nsay hi hello\n", "spaces.csv", DataError, "reads as a single column",
                 id="csv-wrong-delimiter"),
    pytest.param(b"instruction,output,output\na,b,c\n", "dupes.csv", DataError, "has two columns named 'output'",
                 id="csv-duplicate-header"),
    pytest.param(b"text,label\nhello,1\n", "unknown.csv", DataError,
                 "No known dataset shape fits the columns 'text' and 'label'", id="csv-unknown-columns"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "image.csv", DataError,
                 "looks like a binary file", id="png-named-csv"),
    pytest.param(parquet_bytes([GOOD]), "parquet.json", DataError, "looks like a binary file", id="parquet-named-json"),
    pytest.param(gzip.compress(jsonl(GOOD) * 50), "packed.jsonl", DataError, "looks like a binary file",
                 id="gzip-named-jsonl"),
    pytest.param(bytes(range(1, 32)) * 40, "controls.json", DataError, "looks like a binary file",
                 id="control-characters"),
    pytest.param(b"instruction,output\nhi,there\n", "notes.txt", DataError,
                 "has the extension '.txt', which is not a supported format", id="unsupported-extension"),
    pytest.param(b"instruction,output\nhi,there\n", "README", DataError, "has no extension", id="no-extension"),
    pytest.param(b"PK\x03\x04", "book.xlsx", DataError, "use .json, .jsonl, .ndjson, .csv, .tsv or .parquet",
                 id="excel-file"),
    pytest.param(b"instruction,output\nhi,there\n", "text.parquet", DataError, "is not a Parquet file",
                 id="text-named-parquet"),
    pytest.param(parquet_bytes([GOOD])[:40], "cut.parquet", DataError, "damaged or unsupported Parquet file",
                 id="truncated-parquet"),
    pytest.param(rows_json(*[{"instruction": f"q{i}", "output": ""} for i in range(20)]), "no_answers.json", DataError,
                 "all 20 rows were skipped (20 empty output); check which column holds the output",
                 id="every-output-empty"),
    pytest.param(b"instruction,output\nq1,\nq2,   \nq3,\n", "blank_outputs.csv", DataError,
                 "check which column holds the output", id="every-output-blank-csv"),
    pytest.param(rows_json(GOOD), "one.json", DataError, "Only 1 row remains in the data (of 1 loaded)",
                 id="single-row"),
    pytest.param(rows_json(*[GOOD] * 10), "same.json", DataError, "Only 1 row remains after dropping duplicate rows",
                 id="all-duplicates"),
    pytest.param(rows_json(*[GOOD] * 5000), "big.json", DataError, "above the 0.001 MB limit", id="over-size-limit"),
]


def assert_one_sentence(message: str) -> None:
    """The UI shows str(exc) as is: one line, one sentence, no traceback."""
    assert message and "\n" not in message and "\r" not in message
    assert "Traceback" not in message and "Error:" not in message
    assert message.endswith(".") and ". " not in message[:-1], message
    assert message[0].isupper()


def load_and_split(path: Path, max_bytes: int | None = None):
    """The full pipeline a user triggers: load the file, then filter and split with default settings."""
    return prepare_splits(load_source(str(path), max_bytes=max_bytes), DataSettings())


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("content, filename, error, fragment", CASES)
def test_bad_input_is_one_clear_sentence(tmp_path, content, filename, error, fragment):
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(StudioError) as info:
        load_and_split(path, max_bytes=1000 if filename == "big.json" else None)
    assert type(info.value) is error or (error is DataError and isinstance(info.value, DataError))
    assert fragment in str(info.value)
    assert_one_sentence(str(info.value))


GOOD_TOO = {"instruction": "Say bye", "output": "Bye"}

# Row-level problems that once refused the whole file: the row is now repaired or skipped and counted.
ROW_LEVEL = [
    pytest.param(jsonl(GOOD, GOOD_TOO) + b"\n{\"instruction\": }", "bad_line.jsonl", {}, {"bad_json": 1},
                 id="jsonl-bad-line"),
    pytest.param(jsonl(GOOD, [1, 2], 42, GOOD_TOO), "odd_lines.ndjson", {}, {"not_object": 2}, id="jsonl-non-objects"),
    pytest.param(b"instruction,output\na,b\nc,d,e\nf,g,\nh\n", "ragged.csv", {"extra_empty_cells": 1},
                 {"long_row": 1, "empty_output": 1}, id="csv-ragged-rows"),
    pytest.param(rows_json({"instruction": {"a": 1}, "output": "x"}, GOOD, GOOD_TOO), "nested.json", {},
                 {"nested_value": 1}, id="nested-value-in-text-column"),
    pytest.param(rows_json(GOOD, "text", GOOD_TOO), "mixed.json", {}, {"not_object": 1}, id="json-array-non-object"),
    pytest.param(rows_json(chat("assistant", "user", "assistant"), chat("user", "assistant")), "chat.json",
                 {"leading_assistant": 1}, {}, id="chat-starts-with-assistant"),
    pytest.param(jsonl(chat("user", "assistant"), chat("user", "user", "assistant")), "chat.jsonl",
                 {"repeated_role": 1}, {}, id="chat-two-user-turns"),
    pytest.param(jsonl(chat("user", "assistant", "user"), chat("user", "assistant")), "chat.jsonl",
                 {"trailing_user": 1}, {}, id="chat-no-final-answer"),
    pytest.param(rows_json({"conversations": [{"from": "human", "value": "q"}, {"from": "robot", "value": "a"}]},
                           *[{"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": "a"}]}
                             for q in ("q1", "q2")]),
                 "sharegpt.json", {}, {"unknown_role": 1}, id="sharegpt-unknown-role"),
]


@pytest.mark.parametrize("content, filename, repaired, skipped", ROW_LEVEL)
def test_row_level_problems_are_counted_not_refused(tmp_path, content, filename, repaired, skipped):
    path = tmp_path / filename
    path.write_bytes(content)
    summary = load_source(str(path)).summary
    assert (summary.repaired, summary.skipped) == (repaired, skipped)
    assert summary.n_kept == 2


def test_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        load_and_split(tmp_path / "gone.jsonl")
    assert str(info.value) == "File 'gone.jsonl' does not exist."


def test_sparse_200_mb_file_is_refused_without_being_read(tmp_path, monkeypatch):
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # Sparse: no data blocks written.
    opened = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: opened.append(self) or b"")
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self))
    with pytest.raises(DataError) as info:
        load_and_split(path, max_bytes=100 * 1024 * 1024)
    assert str(info.value) == ("File 'huge.jsonl' is 200.0 MB, above the 100.0 MB limit; "
                               "use a smaller file or a subset of it.")
    assert not opened


def test_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError) as info:
        load_and_split(Path("someone/some-dataset"))
    assert_one_sentence(str(info.value))


@pytest.mark.parametrize("filename", ["long.csv", "long.jsonl", "long.json", "long.tsv"])
def test_rows_far_longer_than_normal_load_fine(tmp_path, filename):
    # 1.2 MB in one cell: past csv's default 128 KiB field limit (no trailing space: outputs are trimmed).
    long_text = "word, " * 200_000 + "end."
    rows = [{"instruction": f"Summarise {i}", "output": long_text} for i in range(3)]
    path = tmp_path / filename
    if filename.endswith(".json"):
        path.write_text(json.dumps(rows))
    elif filename.endswith(".jsonl"):
        path.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        sep = "\t" if filename.endswith(".tsv") else ","
        path.write_text(f"instruction{sep}output\n" + "".join(f'{r["instruction"]}{sep}"{long_text}"\n' for r in rows))
    splits = load_and_split(path)
    assert splits.counts["train"] + splits.counts["test"] == 3
    assert all(e.output == long_text for e in splits.train + splits.test)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "latin-1", "cp1252", "utf-16"])
def test_encodings_that_must_just_work(tmp_path, encoding):
    path = tmp_path / "enc.csv"
    path.write_bytes("instruction,output\nCafé?,Crème brûlée.\nÆble?,Øl.\n".encode(encoding))
    splits = load_and_split(path)
    assert {e.output for e in splits.train + splits.test} == {"Crème brûlée.", "Øl."}
