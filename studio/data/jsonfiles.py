"""Streaming JSON readers: a top-level JSON array record by record, JSON Lines line by line.

A 120 MB export never has to sit in memory as one string plus its whole object tree: records are decoded one at a
time (`json.JSONDecoder.raw_decode`, the C scanner) from a window of the file and handed on as they come. A line or
item that is not a JSON object is a row-level problem (skipped and counted); a syntax error inside the array is a
file-level one. An array cut off mid-record (a partial download) keeps its complete records only when asked to.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TextIO

from studio.data.summary import RowLog
from studio.errors import DataError, TruncatedFileError

CHUNK = 1 << 20  # characters read at a time; the window doubles while one record is larger than it
PROGRESS_EVERY = 4096  # records between progress callbacks
_WS = re.compile(r"[ \t\n\r]*")
_NUMBER_START = re.compile(r"-?\d*\.?\d*(?:[eE][+-]?\d*)?")
Record = tuple[int, dict, tuple]  # (row number, row, repairs the reader made)


def json_kind(value: object) -> str:
    """A JSON-ish type name for messages."""
    kinds = {dict: "object", list: "list", str: "string", bool: "true/false value", type(None): "null"}
    return kinds.get(type(value), "number")


class _Window:
    """A sliding window over a text stream that knows the file line and column of its first character."""

    def __init__(self, handle: TextIO, name: str) -> None:
        self.handle, self.name = handle, name
        self.text, self.pos, self.eof = "", 0, False
        self.line, self.col = 1, 0  # of text[0]: 1-based line, 0-based column

    def more(self, at_least: int = CHUNK) -> bool:
        """Drop what was consumed and read at least `at_least` more characters; False at the end of the file."""
        consumed = self.text[:self.pos]
        newlines = consumed.count("\n")
        if newlines:
            self.line, self.col = self.line + newlines, len(consumed) - consumed.rfind("\n") - 1
        else:
            self.col += len(consumed)
        chunk = self.handle.read(max(at_least, CHUNK))
        self.text, self.pos = self.text[self.pos:] + chunk, 0
        self.eof = not chunk
        return bool(chunk)

    def peek(self) -> str | None:
        """The next character that is not whitespace (consuming the whitespace), None at the end of the file."""
        while True:
            self.pos = _WS.match(self.text, self.pos).end()
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return None

    def decode(self, decoder: json.JSONDecoder) -> object:
        """The next JSON value; `_Cut` when the file ends inside it, DataError for a syntax error."""
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                if not self.eof:  # maybe the value runs past the window: widen it and decode again
                    self.more(at_least=len(self.text))
                    continue
                if _cut_off(exc, self.text):
                    raise _Cut from None
                raise self.syntax_error(exc.msg, exc.pos) from None
            except RecursionError:
                raise DataError(f"File {self.name} nests JSON too deeply to read.") from None
            # A number at the window's end may go on in the next chunk; anything else is complete here.
            if end >= len(self.text) and not self.eof and self.more(at_least=len(self.text)):
                continue
            self.pos = end
            return value

    def syntax_error(self, message: str, index: int) -> DataError:
        """'File x is not valid JSON: <message> at line L, column C.' with the position in the whole file."""
        before = self.text[:index]
        newlines = before.count("\n")
        line = self.line + newlines
        col = (index - before.rfind("\n")) if newlines else (self.col + index + 1)
        return DataError(f"File {self.name} is not valid JSON: {message.lower()} at line {line}, column {col}.")


class _Cut(Exception):
    """The file ended inside a JSON value."""


def _cut_off(exc: json.JSONDecodeError, text: str) -> bool:
    """True when a decode error means 'the text ends too early' rather than 'the text is wrong'."""
    if exc.msg.startswith("Unterminated string"):
        return True
    tail = text[exc.pos:].strip()
    if not tail:
        return True
    if "escape" in exc.msg and exc.pos >= len(text) - 6:
        return True
    literal = any(word.startswith(tail) for word in ("true", "false", "null"))
    return literal or _NUMBER_START.fullmatch(tail) is not None


def iter_json_array(handle: TextIO, name: str, log: RowLog, keep_truncated: bool,
                    progress: Callable[[], None] | None = None) -> Iterator[Record]:
    """Records of a top-level JSON array, one at a time; non-objects are skipped and counted."""
    window, decoder = _Window(handle, name), json.JSONDecoder()
    window.peek()
    window.pos += 1  # the opening [
    if window.peek() == "]":
        window.pos += 1
        _expect_end(window)
        raise DataError(f"File {name} holds an empty list, so there are no rows.")
    number, first_other = 0, None
    while True:
        try:
            if window.peek() is None:
                raise _Cut
            item = window.decode(decoder)
        except _Cut:
            _cut(name, number, log, keep_truncated)
            break
        number += 1
        if isinstance(item, dict):
            yield number, item, ()
        else:
            first_other = first_other or (number, item)
            log.skipped("not_object", number, f"is a {json_kind(item)}, not an object with fields", item)
        if progress and number % PROGRESS_EVERY == 0:
            progress()
        after = window.peek()
        if after == ",":
            window.pos += 1
            continue
        if after == "]":
            window.pos += 1
            _expect_end(window)
            break
        if after is None:
            _cut(name, number, log, keep_truncated)
            break
        raise window.syntax_error("Expecting ',' delimiter", window.pos)
    if first_other and log.counts.get("not_object") == number:
        raise DataError(f"Item {first_other[0]} of the JSON array in {name} is a {json_kind(first_other[1])}, "
                        "not an object with fields.")


def _expect_end(window: _Window) -> None:
    """Only whitespace may follow the closing bracket."""
    if window.peek() is not None:
        raise window.syntax_error("Extra data", window.pos)


def _cut(name: str, complete: int, log: RowLog, keep_truncated: bool) -> None:
    """The array ends mid-record: keep its complete records when asked, else refuse with their count."""
    if complete == 0:
        raise DataError(f"File {name} is cut off before its first record ends, so it holds no complete record.")
    if not keep_truncated:
        records = f"{complete:,} complete record" + ("" if complete == 1 else "s")
        raise TruncatedFileError(f"File {name} is cut off in the middle of a record (a partial download?) after "
                                 f"{records}; keep those records or fix the file.", complete)
    log.truncated_after = complete


_LINE_DECODER = json.JSONDecoder()


def _decode_line(line: str) -> object:
    """One JSON Lines record: the C scanner straight on the line (it skips json.loads' per-call checks, which dominate on short rows: `python -m bench data` times the load), and
    json.loads itself for anything unusual (leading spaces, trailing text) so errors read as json's own."""
    try:
        value, end = _LINE_DECODER.raw_decode(line)
    except json.JSONDecodeError:
        return json.loads(line)
    if end != len(line) and not line[end:].isspace():
        return json.loads(line)
    return value


def iter_json_lines(handle: TextIO, name: str, log: RowLog,
                    progress: Callable[[], None] | None = None) -> Iterator[Record]:
    """Records of JSON Lines, one per non-blank line; a line that is not a JSON object is skipped and counted."""
    number = kept = 0
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        number += 1
        if progress and number % PROGRESS_EVERY == 0:
            progress()
        try:
            row = _decode_line(line)
        except json.JSONDecodeError as exc:
            detail = f"(line {line_number}) is not valid JSON ({exc.msg.lower()} at column {exc.colno})"
            log.skipped("bad_json", number, detail, line.strip())
            continue
        except RecursionError:
            log.skipped("bad_json", number, f"(line {line_number}) nests JSON too deeply to read", line[:200])
            continue
        if not isinstance(row, dict):
            log.skipped("not_object", number, f"(line {line_number}) is a {json_kind(row)}, not a JSON object", row)
            continue
        kept += 1
        yield number, row, ()
    if number == 0:
        raise DataError(f"File {name} is empty.")
    if kept == 0:
        note = next(iter(log.notes.get("bad_json") or log.notes.get("not_object") or []), None)
        where = f"; row {note.row} {note.detail}" if note else ""
        raise DataError(f"File {name} has no line that is a JSON object{where}.")
