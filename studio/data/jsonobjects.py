"""A .json file's rows: a top-level array streamed record by record; an object read by its layout (a wrapper such
as {"train": [...]}, columns, rows keyed by id as pandas writes them, one chat, one row); JSON Lines under a .json
name accepted.
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import TextIO

from studio.data.jsonfiles import Record, iter_json_array, iter_json_lines, json_kind
from studio.data.streams import Replay
from studio.data.summary import RowLog
from studio.data.words import plural, quote
from studio.errors import DataError

# Keys an object may use to wrap its list of rows, in order of preference ("train" before "test").
WRAPPER_KEYS = ("train", "data", "rows", "examples", "records", "instances", "items")
# The column that keeps the keys of a JSON object keyed by id, first one free.
KEY_COLUMNS = ("id", "key", "row_id", "_id")


def json_rows(handle: TextIO, name: str, log: RowLog, keep_truncated: bool,
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
