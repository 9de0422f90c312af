"""Reading raw rows from a file (JSON, JSONL, CSV/TSV, Parquet), streamed so that big files stay small in memory.

A file-level problem (unreadable, binary, not JSON, no rows) becomes a `DataError` with one sentence; no json,
csv or pyarrow exception escapes. A row-level problem (one bad JSON line, a ragged CSV record) is repaired or
skipped and counted in the caller's `RowLog`.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from studio.data.jsonfiles import Record, iter_json_array, iter_json_lines, json_kind
from studio.data.summary import RowLog
from studio.errors import DataError

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")
CSV_DELIMITERS = (",", ";", "\t", "|")  # Tried in this order; .tsv files try the tab first.
# Keys an object may use to wrap its list of rows, in order of preference ("train" before "test").
WRAPPER_KEYS = ("train", "data", "rows", "examples", "records", "instances", "items")

# Cells longer than csv's default 128 KiB limit are legitimate (long documents), so lift the limit once.
csv.field_size_limit(2**31 - 1)


def quote(text: object, limit: int = 60) -> str:
    """A name fit for a one-line message: control characters blanked, clipped, in single quotes."""
    clean = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in str(text))
    return f"'{clean[:limit]}...'" if len(clean) > limit else f"'{clean}'"


def plural(n: int, word: str) -> str:
    """'1 value', '3 values'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def megabytes(n_bytes: int) -> str:
    """A byte count as MB (MiB) with enough digits to tell small limits apart."""
    value = n_bytes / 2**20
    return f"{value:.1f} MB" if value >= 1 or value == 0 else f"{value:.3f} MB"


def local_path(path: str | Path) -> Path:
    """The path with ~ expanded (left as typed when ~user names no known user)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def check_file(path: str | Path, max_bytes: int | None = None) -> int:
    """The size of a readable file of a supported format within `max_bytes`, else DataError (nothing is read)."""
    path = local_path(path)
    name, suffix = quote(path.name), path.suffix.lower()
    size = _file_size(path, name)  # From stat: a file over the limit is never read.
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"the extension {quote(suffix)}" if suffix else "no extension"
        raise DataError(f"File {name} has {kind}, which is not a supported format; "
                        f"use {', '.join(SUPPORTED_SUFFIXES[:-1])} or {SUPPORTED_SUFFIXES[-1]}.")
    if max_bytes is not None and size > max_bytes:
        raise DataError(f"File {name} is {megabytes(size)}, above the {megabytes(max_bytes)} limit; "
                        "use a smaller file or a subset of it.")
    if size == 0:
        raise DataError(f"File {name} is empty.")
    return size


def read_rows(path: str | Path, max_bytes: int | None = None) -> list[dict]:
    """Every usable row of a .json/.jsonl/.ndjson/.csv/.tsv/.parquet file as a list of dicts (problems skipped)."""
    check_file(path, max_bytes)
    return [row for _, row, _ in iter_file_rows(path, RowLog())]


def iter_file_rows(path: str | Path, log: RowLog, keep_truncated: bool = False,
                   progress: Callable[[float], None] | None = None) -> Iterator[Record]:
    """Stream (row number, row, repairs) from a file; row-level read problems go to `log`, file-level ones raise."""
    path = local_path(path)
    name, suffix = quote(path.name), path.suffix.lower()
    size = check_file(path)
    if suffix == ".parquet":
        yield from _read_parquet(path, name)
        return
    encoding = _encoding(path, name)
    try:
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as handle:
            tick = (lambda: progress(min(raw.tell() / size, 1.0))) if progress else None
            if suffix == ".json":
                yield from _json_rows(handle, path, name, encoding, log, keep_truncated, tick)
            elif suffix in (".jsonl", ".ndjson"):
                yield from iter_json_lines(handle, name, log, tick)
            else:
                yield from _csv_rows(handle, name, log, prefer_tab=suffix == ".tsv")
    except OSError as exc:
        raise DataError(f"File {name} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    except UnicodeDecodeError:  # the encoding check read every byte, so only a file changed since lands here
        raise DataError(f"File {name} changed while it was read; load it again.") from None


def _file_size(path: Path, name: str) -> int:
    """The size of an existing regular file, with a sentence for missing paths and folders."""
    try:
        if path.is_dir():
            raise DataError(f"{name} is a folder, not a file.")
        return path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"File {name} does not exist.") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path.
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise DataError(f"File {name} cannot be opened ({reason}).") from None


def _encoding(path: Path, name: str) -> str:
    """UTF-16 with a BOM, UTF-8 (BOM allowed), else Windows-1252/Latin-1; a binary file is refused."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    binary = DataError(f"File {name} looks like a binary file, not UTF-8 or Latin-1 text.")
    if b"\x00" in head and not utf16:
        raise binary
    encoding = "utf-16" if utf16 else next((e for e in ("utf-8-sig", "cp1252") if _decodes(path, e)), "latin-1")
    # Real text has almost no control characters; random or compressed bytes have many.
    sample = head.decode(encoding, errors="ignore")
    if not sample.strip() and len(head) == path.stat().st_size:
        raise DataError(f"File {name} is empty.")
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    if controls > max(2, len(sample) // 100):
        raise binary
    return encoding


def _decodes(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes as `encoding`, checked in chunks (a late bad byte must not surprise us)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _json_rows(handle: TextIO, path: Path, name: str, encoding: str, log: RowLog, keep_truncated: bool,
               tick: Callable[[], None] | None) -> Iterator[Record]:
    """Rows of a .json file: an array is streamed; an object (wrapper, columns, one row) or JSON Lines are not."""
    first = handle.read(4096)
    stripped = first.lstrip()
    if not stripped and not handle.read(1):
        raise DataError(f"File {name} is empty.")
    handle.seek(0)
    if stripped.startswith("["):
        yield from iter_json_array(handle, name, log, keep_truncated, tick)
        return
    text = handle.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file holding one object per line is common; accept it rather than fail on "Extra data".
        if exc.msg == "Extra data" and _holds_json_lines(text, name):
            yield from iter_json_lines(io.StringIO(text), name, log, tick)
            return
        raise DataError(f"File {name} is not valid JSON: {exc.msg.lower()} at line {exc.lineno}, "
                        f"column {exc.colno}.") from None
    except RecursionError:
        raise DataError(f"File {name} nests JSON too deeply to read.") from None
    del text
    if isinstance(data, list):
        yield from _object_list(data, name, "the JSON array", log)
    elif isinstance(data, dict):
        yield from _rows_from_object(data, name, log)
    else:
        raise DataError(f"File {name} holds a single JSON {json_kind(data)}, not a list of rows.")


def _holds_json_lines(text: str, name: str) -> bool:
    """Whether some line of the text is a JSON object (the file is JSON Lines under a .json name)."""
    try:
        return any(True for _ in iter_json_lines(io.StringIO(text), name, RowLog()))
    except DataError:
        return False


def _rows_from_object(data: dict, name: str, log: RowLog) -> Iterator[Record]:
    """Rows from a top-level JSON object: a wrapper such as {"train": [...]}, columns, or a single row."""
    if not data:
        raise DataError(f"File {name} holds an empty JSON object, not a list of rows.")
    wrapped = [k for k, v in data.items() if _list_kind(v) == "rows"]
    if wrapped:
        key = next((k for k in WRAPPER_KEYS if k in wrapped), wrapped[0])
        yield from _object_list(data[key], name, f"the array under {quote(key)}", log)
        return
    if any(_list_kind(v) == "turns" for v in data.values()):
        yield 1, data, ()  # One chat, e.g. {"messages": [{"role": ..., "content": ...}, ...]}.
        return
    if all(isinstance(v, list) for v in data.values()):
        lengths = {k: len(v) for k, v in data.items()}
        if len(set(lengths.values())) > 1:
            short, long = min(lengths, key=lengths.get), max(lengths, key=lengths.get)
            raise DataError(f"File {name} looks column-oriented but its columns differ in length "
                            f"({quote(short)} has {plural(lengths[short], 'value')}, {quote(long)} has "
                            f"{lengths[long]}).")
        rows = [dict(zip(data, values)) for values in zip(*data.values())]
        if not rows:
            raise DataError(f"File {name} has columns but no rows.")
        yield from ((number, row, ()) for number, row in enumerate(rows, start=1))
        return
    if not any(isinstance(v, (list, dict)) for v in data.values()):
        yield 1, data, ()
        return
    raise DataError(f"File {name} holds a JSON object that is neither a list of rows, an object wrapping "
                    "one (such as {\"train\": [...]}), nor columns of equal length.")


def _list_kind(value: object) -> str | None:
    """"turns" for one chat's turns ({role, content} or {from, value}), "rows" for other lists of objects."""
    if not (isinstance(value, list) and value and any(isinstance(v, dict) for v in value)):
        return None
    first = next(v for v in value if isinstance(v, dict))
    return "turns" if {"role", "content"} <= first.keys() or {"from", "value"} <= first.keys() else "rows"


def _object_list(items: list, name: str, where: str, log: RowLog) -> Iterator[Record]:
    """The objects of a parsed array; other items are skipped and counted, unless there is no object at all."""
    if not items:
        raise DataError(f"File {name} holds an empty list, so there are no rows.")
    if not any(isinstance(item, dict) for item in items):
        raise DataError(f"Item 1 of {where} in {name} is a {json_kind(items[0])}, not an object with fields.")
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict):
            yield number, item, ()
        else:
            log.skipped("not_object", number, f"is a {json_kind(item)}, not an object with fields", item)


def _csv_rows(handle: TextIO, name: str, log: RowLog, prefer_tab: bool) -> Iterator[Record]:
    """Rows of delimited text (delimiter sniffed among , ; tab and |); ragged rows are padded, trimmed or skipped."""
    sample = handle.read(65536)
    handle.seek(0)
    delimiter = _sniff_delimiter(sample, prefer_tab)
    if delimiter is None:
        if not sample.strip():
            raise DataError(f"File {name} is empty.")
        raise DataError(f"File {name} reads as a single column; separate at least two columns (instruction "
                        "and output) with commas, semicolons, tabs or |.")
    reader = csv.reader(handle, delimiter=delimiter)
    number = 0
    try:
        # Leading blank lines are not the header; the sniffer already found a multi-column record.
        header = _clean_header(next((r for r in reader if any(c.strip() for c in r)), []), name)
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # Blank lines (often a trailing one) are not rows.
            number += 1
            fitted = _fit_record(record, header, reader.line_num)
            if fitted is None:
                detail = f"(line {reader.line_num}) has {plural(len(record), 'value')} but the header has {len(header)}"
                log.skipped("long_row", number, detail, record)
            else:
                yield number, *fitted
    except csv.Error as exc:
        raise DataError(f"File {name} is not valid CSV near line {reader.line_num} ({exc}).") from None
    if number == 0:
        raise DataError(f"File {name} has only a header row and no data rows.")


def _fit_record(record: list[str], header: list[str], line: int) -> tuple[dict, tuple] | None:
    """A CSV record as (row, repairs): missing trailing cells empty, empty extras dropped; None for real extras."""
    width, n = len(header), len(record)
    if n == width:
        return dict(zip(header, record)), ()
    counted = f"(line {line}) has {plural(n, 'value')} but the header has {width} columns"
    if n < width:
        return dict(zip(header, record + [""] * (width - n))), (("short_row", f"{counted}; the missing cells are empty"),)
    if not any(cell.strip() for cell in record[width:]):
        return dict(zip(header, record)), (("extra_empty_cells", f"{counted}; the extra ones are empty"),)
    return None


def _clean_header(header: list[str], name: str) -> list[str]:
    """Column names: trimmed, blanks named column_N, duplicates refused."""
    names = [cell.strip() or f"column_{i}" for i, cell in enumerate(header, start=1)]
    twice = next((col for col in names if names.count(col) > 1), None)
    if twice is not None:
        raise DataError(f"File {name} has two columns named {quote(twice)}; rename one of them.")
    return names


def _sniff_delimiter(text: str, prefer_tab: bool) -> str | None:
    """The delimiter giving a multi-column header that most sample records agree with, or None."""
    sample = text[:65536]
    best, best_score = None, (0.0, 0)
    order = ("\t",) + CSV_DELIMITERS if prefer_tab else CSV_DELIMITERS
    for delimiter in dict.fromkeys(order):
        try:
            records = [r for _, r in zip(range(50), csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter))]
        except csv.Error:
            continue
        records = [r for r in records if any(c.strip() for c in r)]
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        # The last sampled record may be cut off by the sample boundary, so it does not vote.
        voters = records[1:-1] if len(records) > 2 else records[1:]
        agree = sum(len(r) == width for r in voters) / len(voters) if voters else 1.0
        if (agree, width) > best_score:
            best, best_score = delimiter, (agree, width)
    return best


def _read_parquet(path: Path, name: str) -> Iterator[Record]:
    """Rows from a Parquet file via pyarrow, a batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        if handle.read(4) != b"PAR1":
            raise DataError(f"File {name} is not a Parquet file (it lacks the PAR1 signature).")
    number = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
            for row in batch.to_pylist():
                number += 1
                yield number, row, ()
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise DataError(f"File {name} is a damaged or unsupported Parquet file ({type(exc).__name__}).") from None
    if number == 0:
        raise DataError(f"File {name} has columns but no rows.")
