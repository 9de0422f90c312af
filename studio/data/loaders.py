"""Reading raw rows from a file (JSON, JSONL, CSV/TSV, Parquet) or from the Hugging Face Hub.

Every problem a user can cause becomes a `DataError` with one sentence;
no json, csv, pyarrow or datasets exception escapes.
"""
from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path

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
    """Read a .json/.jsonl/.ndjson/.csv/.tsv/.parquet file into a list of row dicts."""
    path = local_path(path)
    name, suffix = quote(path.name), path.suffix.lower()
    check_file(path, max_bytes)
    if suffix == ".parquet":
        return _read_parquet(path, name)
    try:
        text = _decode(path.read_bytes(), name)
    except OSError as exc:
        raise DataError(f"File {name} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if not text.strip():
        raise DataError(f"File {name} is empty.")
    if suffix == ".json":
        return _parse_json(text, name)
    if suffix in (".jsonl", ".ndjson"):
        return _parse_jsonl(text, name)
    return _parse_csv(text, name, prefer_tab=suffix == ".tsv")


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


def _decode(data: bytes, name: str) -> str:
    """Text from bytes: UTF-16 with a BOM, UTF-8 (BOM allowed), else Windows-1252/Latin-1; binary is refused."""
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    binary = DataError(f"File {name} looks like a binary file, not UTF-8 or Latin-1 text.")
    if b"\x00" in data[:65536] and not utf16:
        raise binary
    for encoding in ("utf-16",) * utf16 + ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = data.decode("latin-1")  # Decodes any bytes, hence last and judged below.
    # Real text has almost no control characters; random or compressed bytes have many.
    sample = text[:65536]
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    if controls > max(2, len(sample) // 100):
        raise binary
    return text


def _parse_json(text: str, name: str) -> list[dict]:
    """Rows from a JSON array, an object wrapping an array, column lists, or (if it is really JSONL) lines."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file holding one object per line is common; accept it rather than fail on "Extra data".
        if exc.msg == "Extra data":
            try:
                return _parse_jsonl(text, name)
            except DataError:
                pass
        raise DataError(f"File {name} is not valid JSON: {exc.msg.lower()} at line {exc.lineno}, "
                        f"column {exc.colno}.") from None
    except RecursionError:
        raise DataError(f"File {name} nests JSON too deeply to read.") from None
    if isinstance(data, list):
        return _object_list(data, name, "the JSON array")
    if isinstance(data, dict):
        return _rows_from_object(data, name)
    raise DataError(f"File {name} holds a single JSON {_kind(data)}, not a list of rows.")


def _rows_from_object(data: dict, name: str) -> list[dict]:
    """Rows from a top-level JSON object: a wrapper such as {"train": [...]}, columns, or a single row."""
    if not data:
        raise DataError(f"File {name} holds an empty JSON object, not a list of rows.")
    wrapped = [k for k, v in data.items() if _list_kind(v) == "rows"]
    if wrapped:
        key = next((k for k in WRAPPER_KEYS if k in wrapped), wrapped[0])
        return _object_list(data[key], name, f"the array under {quote(key)}")
    if any(_list_kind(v) == "turns" for v in data.values()):
        return [data]  # One chat, e.g. {"messages": [{"role": ..., "content": ...}, ...]}.
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
        return rows
    if not any(isinstance(v, (list, dict)) for v in data.values()):
        return [data]
    raise DataError(f"File {name} holds a JSON object that is neither a list of rows, an object wrapping "
                    "one (such as {\"train\": [...]}), nor columns of equal length.")


def _list_kind(value: object) -> str | None:
    """"turns" for one chat's turns ({role, content} or {from, value}), "rows" for other lists of objects."""
    if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
        return None
    first = value[0]
    return "turns" if {"role", "content"} <= first.keys() or {"from", "value"} <= first.keys() else "rows"


def _object_list(items: list, name: str, where: str) -> list[dict]:
    """Check that a parsed array holds only objects."""
    if not items:
        raise DataError(f"File {name} holds an empty list, so there are no rows.")
    bad = next((i for i, item in enumerate(items) if not isinstance(item, dict)), None)
    if bad is not None:
        raise DataError(f"Item {bad + 1} of {where} in {name} is a {_kind(items[bad])}, not an object with fields.")
    return items


def _parse_jsonl(text: str, name: str) -> list[dict]:
    """Rows from JSON Lines: one object per non-blank line."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"Line {number} of {name} is not valid JSON ({exc.msg.lower()} at column "
                            f"{exc.colno}).") from None
        except RecursionError:
            raise DataError(f"Line {number} of {name} nests JSON too deeply to read.") from None
        if not isinstance(row, dict):
            raise DataError(f"Line {number} of {name} is a {_kind(row)}, not a JSON object.")
        rows.append(row)
    if not rows:
        raise DataError(f"File {name} is empty.")
    return rows


def _kind(value: object) -> str:
    """A JSON-ish type name for messages."""
    kinds = {dict: "object", list: "list", str: "string", bool: "true/false value", type(None): "null"}
    return kinds.get(type(value), "number")


def _parse_csv(text: str, name: str, prefer_tab: bool) -> list[dict]:
    """Rows from delimited text whose delimiter is sniffed among , ; tab and |."""
    delimiter = _sniff_delimiter(text, prefer_tab)
    if delimiter is None:
        raise DataError(f"File {name} reads as a single column; separate at least two columns (instruction "
                        "and output) with commas, semicolons, tabs or |.")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        # Leading blank lines are not the header; the sniffer already found a multi-column record.
        header = _clean_header(next((r for r in reader if any(c.strip() for c in r)), []), name)
        rows = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # Blank lines (often a trailing one) are not rows.
            if len(record) != len(header):
                raise DataError(f"Row {len(rows) + 1} of {name} (line {reader.line_num}) has "
                                f"{plural(len(record), 'value')} but the header has {len(header)} columns.")
            rows.append(dict(zip(header, record)))
    except csv.Error as exc:
        raise DataError(f"File {name} is not valid CSV near line {reader.line_num} ({exc}).") from None
    if not rows:
        raise DataError(f"File {name} has only a header row and no data rows.")
    return rows


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


def _read_parquet(path: Path, name: str) -> list[dict]:
    """Rows from a Parquet file via pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with path.open("rb") as handle:
            is_parquet = handle.read(4) == b"PAR1"
        rows = pq.read_table(path).to_pylist() if is_parquet else None
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise DataError(f"File {name} is a damaged or unsupported Parquet file ({type(exc).__name__}).") from None
    if rows is None:
        raise DataError(f"File {name} is not a Parquet file (it lacks the PAR1 signature).")
    if not rows:
        raise DataError(f"File {name} has columns but no rows.")
    return rows
