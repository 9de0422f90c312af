"""Reading raw rows from a file (JSON, JSONL, CSV/TSV, Parquet, each also compressed), streamed so that big files
stay small in memory.

A file-level problem (unreadable, binary, not JSON, no rows) becomes a `DataError` with one sentence; no json,
csv, pyarrow or decompressor exception escapes. A row-level problem (one bad JSON line, a ragged or garbled CSV
record) is repaired or skipped and counted in the caller's `RowLog`. Files are named in messages as the user gave
them (`words.path_label`).
"""
from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TextIO

from studio.data.csvfiles import csv_rows
from studio.data.jsonfiles import Record, iter_json_array, iter_json_lines, json_kind
from studio.data.streams import COMPRESSIONS, DAMAGED, Replay, detect_encoding, open_binary, split_name, zip_member
from studio.data.summary import RowLog
from studio.data.words import megabytes, path_label, plural, quote
from studio.errors import DataError

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")
# Keys an object may use to wrap its list of rows, in order of preference ("train" before "test").
WRAPPER_KEYS = ("train", "data", "rows", "examples", "records", "instances", "items")
# The column that keeps the keys of a JSON object keyed by id, first one free.
KEY_COLUMNS = ("id", "key", "row_id", "_id")


@dataclass(frozen=True)
class DataFile:
    """A data file as the loaders see it: where it is, how it is named in messages, its format and compression."""

    path: Path
    label: str
    fmt: str  # ".jsonl", ".csv", ...
    compression: str = ""  # "", ".gz", ".bz2", ".xz", ".zst" or ".zip"
    member: str = ""  # the file inside a .zip
    size: int = 0


def local_path(path: str | Path) -> Path:
    """The path with ~ expanded (left as typed when ~user names no known user)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def has_data_suffix(name: str) -> bool:
    """Whether a file name ends like a supported format, compressed or not ('a.csv', 'a.jsonl.gz', 'a.zip')."""
    fmt, compression = split_name(name)
    return fmt in SUPPORTED_SUFFIXES or compression == ".zip"


def check_file(path: str | Path, max_bytes: int | None = None, label: str | None = None) -> int:
    """The size of a readable file of a supported format within `max_bytes`, else DataError (no row is read)."""
    return data_file(path, max_bytes, label).size


def data_file(path: str | Path, max_bytes: int | None = None, label: str | None = None) -> DataFile:
    """The file's format and compression, checked: it exists, its format is supported, it is within `max_bytes`."""
    label = label or path_label(path)
    path = local_path(path)
    size = _file_size(path, label)  # From stat: a file over the limit is never read.
    fmt, compression = split_name(path.name)
    member = zip_member(path, label) if compression == ".zip" and size else ""
    if member:
        fmt, inner = split_name(member)
        if inner:
            raise DataError(f"File {label} holds the compressed file {quote(member)}; put the uncompressed file in "
                            "the zip instead.")
    if fmt not in SUPPORTED_SUFFIXES:
        raise DataError(_unsupported(label, fmt, compression, member))
    if max_bytes is not None and size > max_bytes:
        raise DataError(f"File {label} is {megabytes(size)}, above the {megabytes(max_bytes)} limit; "
                        "use a smaller file or a subset of it.")
    if size == 0:
        raise DataError(f"File {label} is empty.")
    return DataFile(path, label, fmt, compression, member, size)


def _unsupported(label: str, fmt: str, compression: str, member: str) -> str:
    """The sentence for a format the loaders do not read."""
    formats = f"{', '.join(SUPPORTED_SUFFIXES[:-1])} or {SUPPORTED_SUFFIXES[-1]}"
    packed = f"{', '.join(list(COMPRESSIONS)[:-1])} or a one-file .zip"
    if member:
        return f"File {label} holds {quote(member)}, which is not a supported format; put a {formats} file in it."
    if compression and not fmt:
        return (f"File {label} is {COMPRESSIONS[compression]}-compressed but its name does not say what it holds; "
                f"name it like data.jsonl{compression} ({formats} inside).")
    kind = f"the extension {quote(fmt + compression)}" if fmt else "no extension"
    return f"File {label} has {kind}, which is not a supported format; use {formats} (also packed as {packed})."


def read_rows(path: str | Path, max_bytes: int | None = None) -> list[dict]:
    """Every usable row of a supported file (compressed or not) as a list of dicts (problems skipped)."""
    check_file(path, max_bytes)
    return [row for _, row, _ in iter_file_rows(path, RowLog(), max_bytes=max_bytes)]


def iter_file_rows(path: str | Path, log: RowLog, keep_truncated: bool = False,
                   progress: Callable[[float], None] | None = None, max_bytes: int | None = None,
                   label: str | None = None) -> Iterator[Record]:
    """Stream (row number, row, repairs) from a file; row-level read problems go to `log`, file-level ones raise.

    A compressed file is unpacked as it is read; `max_bytes` also caps its unpacked size.
    """
    source = data_file(path, label=label)
    limit = (max_bytes, f"File {source.label} unpacks to more than the {megabytes(max_bytes)} limit; use a smaller "
                        "file or a subset of it.") if max_bytes is not None and source.compression else None
    opener = partial(open_binary, source.path, source.compression, source.label, limit, source.member)
    with _read_errors(source):
        if source.fmt == ".parquet":
            yield from _read_parquet(source, opener)
            return
        encoding = detect_encoding(opener, source.label)
        with opener() as (stream, raw), io.TextIOWrapper(stream, encoding=encoding, newline="") as handle:
            tick = (lambda: progress(min(raw.tell() / source.size, 1.0))) if progress else None
            name = source.label
            if source.fmt == ".json":
                yield from _json_rows(handle, name, log, keep_truncated, tick)
            elif source.fmt in (".jsonl", ".ndjson"):
                yield from iter_json_lines(handle, name, log, tick)
            else:
                yield from csv_rows(handle, name, log, prefer_tab=source.fmt == ".tsv")


@contextmanager
def _read_errors(source: DataFile) -> Iterator[None]:
    """Reading and unpacking errors as one sentence each."""
    name, kind = source.label, COMPRESSIONS.get(source.compression, "")
    try:
        yield
    except EOFError:
        raise DataError(f"File {name} is cut off: its {kind} data ends early (a partial download?).") from None
    except DAMAGED:
        raise DataError(f"File {name} is not valid {kind} data (damaged, or not really {kind}).") from None
    except OSError as exc:
        reason = exc.strerror or (str(exc) if source.compression else "") or type(exc).__name__
        raise DataError(f"File {name} cannot be read ({reason.rstrip('.')}).") from None
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


def _json_rows(handle: TextIO, name: str, log: RowLog, keep_truncated: bool,
               tick: Callable[[], None] | None) -> Iterator[Record]:
    """Rows of a .json file: an array is streamed; an object (wrapper, columns, keyed rows, one row) or JSON Lines
    are not."""
    first = handle.read(4096)
    stripped = first.lstrip()
    extra = "" if stripped else handle.read(1)
    if not stripped and not extra:
        raise DataError(f"File {name} is empty.")
    stream = Replay(first + extra, handle)  # the head is read again by the parser, so nothing needs to seek
    if stripped.startswith("["):
        yield from iter_json_array(stream, name, log, keep_truncated, tick)
        return
    text = stream.read()
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
    """Rows from a top-level JSON object: a wrapper such as {"train": [...]}, columns, rows keyed by id, or one row."""
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
        yield from _numbered(_columns(data, name))
        return
    if all(isinstance(v, dict) for v in data.values()):
        yield from _numbered(_keyed_rows(data, log))
        return
    if not any(isinstance(v, (list, dict)) for v in data.values()):
        yield 1, data, ()
        return
    raise DataError(f"File {name} holds a JSON object that is neither a list of rows, an object wrapping "
                    "one (such as {\"train\": [...]}), rows keyed by id, nor columns of equal length.")


def _numbered(rows: list[dict]) -> Iterator[Record]:
    return ((number, row, ()) for number, row in enumerate(rows, start=1))


def _columns(data: dict, name: str) -> list[dict]:
    """Rows from {column: [values]} (pandas' orient="list"); columns of different lengths are refused."""
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


def _keyed_rows(data: dict[str, dict], log: RowLog) -> list[dict]:
    """Rows from an object of objects: {id: row} (pandas' orient="index") with the ids kept as a column, or
    {column: {row number: value}} (pandas' default orient="columns")."""
    inner = list(dict.fromkeys(k for value in data.values() for k in value))
    if inner and all(_is_index(k) for k in inner) and not all(_is_index(k) for k in data):
        log.file_note("read the JSON object as columns of numbered values (pandas' to_json layout)")
        return [{column: values.get(i) for column, values in data.items()} for i in inner]
    column = next((c for c in KEY_COLUMNS if c not in inner), "_key")
    entries = "1 entry" if len(data) == 1 else f"{len(data):,} entries"
    log.file_note(f"read the JSON object's {entries} as rows keyed by id (the keys are in column {quote(column)})")
    return [{column: key, **value} for key, value in data.items()]


def _is_index(key: str) -> bool:
    """A row number as pandas writes it ("0", "17")."""
    return key.isdigit()


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




def _read_parquet(source: DataFile, opener: Callable) -> Iterator[Record]:
    """Rows from a Parquet file via pyarrow, a batch at a time (a compressed one is unpacked to a temporary file
    first: pyarrow must seek in it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = source.label
    with opener() as (stream, _), tempfile.TemporaryFile() as spool:
        if source.compression:
            shutil.copyfileobj(stream, spool, 1 << 20)
            spool.seek(0)
            stream = spool
        if stream.read(4) != b"PAR1":
            raise DataError(f"File {name} is not a Parquet file (it lacks the PAR1 signature).")
        stream.seek(0)
        number = 0
        try:
            for batch in pq.ParquetFile(stream).iter_batches(batch_size=8192):
                for row in batch.to_pylist():
                    number += 1
                    yield number, row, ()
        except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
            raise DataError(f"File {name} is a damaged or unsupported Parquet file ({type(exc).__name__}).") from None
    if number == 0:
        raise DataError(f"File {name} has columns but no rows.")
