"""Reading raw rows from a file (JSON, JSONL, CSV/TSV, Parquet, each also compressed), streamed so that big files
stay small in memory.

A file-level problem (unreadable, binary, not JSON, no rows) becomes a `DataError` with one sentence; no json,
csv, pyarrow or decompressor exception escapes. A row-level problem (one bad JSON line, a ragged or garbled CSV
record) is repaired or skipped and counted in the caller's `RowLog`. Files are named in messages as the user gave
them (`words.path_label`).
"""
from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from studio.data.csvfiles import csv_rows
from studio.data.jsonfiles import Record, iter_json_lines
from studio.data.jsonobjects import json_rows
from studio.data.streams import COMPRESSIONS, DAMAGED, detect_encoding, open_binary, split_name, zip_member
from studio.data.summary import RowLog
from studio.data.words import megabytes, path_label, quote
from studio.errors import DataError

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")


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
    except (RuntimeError, ValueError):  # ValueError: a NUL character after the ~
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
                yield from json_rows(handle, name, log, keep_truncated, tick)
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
