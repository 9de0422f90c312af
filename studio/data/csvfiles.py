"""Delimited text (CSV, TSV) as rows: the delimiter sniffed, the header found below any notes, ragged rows fitted,
garbled rows (broken quoting) skipped and counted.

Published files often open with a note ("Warning: please do not ...", a '#' comment) or a line of bare commas
above the header; the header is then the first row below of two or more distinct names that are not numbers, and
the lines above it are counted, never read as data (a first row that can be a header stays the header, as before). A row whose quoting is broken (a stray quote in an unquoted cell, a quoted cell that does not close where it
should, one that swallows the next records) parses into cells that only look right, so it is skipped as garbled;
only its first line is lost: the lines a broken quote swallowed are read again as records of their own.
"""
from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Iterator
from typing import TextIO

from studio.data.jsonfiles import Record
from studio.data.streams import Replay
from studio.data.summary import RowLog
from studio.data.words import plural, quote
from studio.errors import DataError

CSV_DELIMITERS = (",", ";", "\t", "|")  # Tried in this order; .tsv files try the tab first.
SAMPLE_CHARS = 65536
SAMPLE_RECORDS = 50
MAX_ROWS_ABOVE = 20  # notes above a header: more than this and the first row is the header after all
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*%?")

# Cells longer than csv's default 128 KiB limit are legitimate (long documents), so lift the limit once.
csv.field_size_limit(2**31 - 1)


def csv_rows(handle: TextIO, name: str, log: RowLog, prefer_tab: bool) -> Iterator[Record]:
    """Rows of delimited text; notes above the header, blank lines, ragged and garbled rows are counted in `log`."""
    sample = handle.read(SAMPLE_CHARS)
    found = sniff(sample, prefer_tab)
    if found is None:
        if not sample.strip():
            raise DataError(f"File {name} is empty.")
        raise DataError(f"File {name} reads as a single column; separate at least two columns (instruction "
                        "and output) with commas, semicolons, tabs or |.")
    delimiter, header_at = found
    tap = _Tap(iter(Replay(sample, handle)))
    reader = csv.reader(tap, delimiter=delimiter)
    try:
        given, lines_above = _read_header(reader, tap, header_at, delimiter)
        header = clean_header(given, name)
        if lines_above:
            log.file_note(f"skipped {plural(lines_above, 'line')} above the header")
        number = yield from _data_rows(reader, tap, header, given, delimiter, log)
    except csv.Error as exc:
        raise DataError(f"File {name} is not valid CSV near line {tap.line} ({exc}).") from None
    if number == 0:
        raise DataError(f"File {name} has only a header row and no data rows.")


def _read_header(reader, tap: _Tap, header_at: int, delimiter: str) -> tuple[list[str], int]:
    """The header record (after `header_at` sound non-blank records, as `sniff` counted them) and the lines above."""
    seen, valid = 0, _record_pattern(delimiter)
    for record in reader:
        lines = tap.take()
        raw = "".join(lines)
        if not any(cell.strip() for cell in record) or ('"' in raw and not valid.fullmatch(raw)):
            continue
        if seen == header_at:
            return record, tap.line - len(lines)
        seen += 1
    return [], 0


def _data_rows(reader, tap: _Tap, header: list[str], given: list[str], delimiter: str,
               log: RowLog) -> Iterator[Record]:
    """The records below the header as (number, row, repairs); returns how many non-blank records there were."""
    number = blanks = 0
    valid = _record_pattern(delimiter)
    given = [cell.strip() for cell in given]
    for record in reader:
        lines = tap.take()
        if not any(cell.strip() for cell in record):
            blanks += 1  # blank lines (often a trailing one) and lines of bare delimiters are not rows
            continue
        number += 1
        line = tap.line - len(lines) + 1
        raw = "".join(lines)
        if '"' in raw and valid.fullmatch(raw) is None:
            log.skipped("garbled_row", number, f"(line {line}) has broken quoting (a stray or unclosed quote "
                                               "mark), so its cells cannot be trusted", lines[0])
            tap.push_back(lines[1:])  # what a broken quote swallowed is read again, line by line
        elif [cell.strip() for cell in record] == given:
            log.skipped("header_row", number, f"(line {line}) repeats the header", raw)
        elif (fitted := fit_record(record, header, line)) is None:
            detail = f"(line {line}) has {plural(len(record), 'value')} but the header has {len(header)}"
            log.skipped("long_row", number, detail, record)
        else:
            yield number, *fitted
    if blanks:
        log.file_note(f"ignored {plural(blanks, 'blank line')}")
    return number


class _Tap:
    """Hands lines to the csv reader and keeps them, so each record's raw text can be checked."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines, self.taken, self.back = lines, [], deque()
        self.line = 0  # the file line number of the last line handed out

    def __iter__(self) -> _Tap:
        return self

    def __next__(self) -> str:
        line = self.back.popleft() if self.back else next(self.lines)
        self.taken.append(line)
        self.line += 1
        return line

    def push_back(self, lines: list[str]) -> None:
        """Hand these lines out again, next."""
        self.back.extendleft(reversed(lines))
        self.line -= len(lines)

    def take(self) -> list[str]:
        """The lines read since the last call."""
        taken, self.taken = self.taken, []
        return taken


def _record_pattern(delimiter: str) -> re.Pattern:
    """A record with sound quoting: each cell quoted ("..." with "" inside) or plain (quotes only in pairs)."""
    d = re.escape(delimiter)
    quoted = r'"(?:[^"]|"")*"'
    plain = rf'(?:[^"{d}\r\n]+(?:"[^"{d}\r\n]*"[^"{d}\r\n]*)*)?'
    cell = rf"(?:{quoted}|{plain})"
    return re.compile(rf"{cell}(?:{d}{cell})*(?:\r\n|\n|\r)?")


def fit_record(record: list[str], header: list[str], line: int) -> tuple[dict, tuple] | None:
    """A CSV record as (row, repairs): missing trailing cells empty, empty extras dropped; None for real extras."""
    width, n = len(header), len(record)
    if n == width:
        return dict(zip(header, record)), ()
    counted = f"(line {line}) has {plural(n, 'value')} but the header has {width} columns"
    if n < width:
        padded = record + [""] * (width - n)
        return dict(zip(header, padded)), (("short_row", f"{counted}; the missing cells are empty"),)
    if not any(cell.strip() for cell in record[width:]):
        return dict(zip(header, record)), (("extra_empty_cells", f"{counted}; the extra ones are empty"),)
    return None


def clean_header(header: list[str], name: str) -> list[str]:
    """Column names: trimmed, blanks named column_N, duplicates refused."""
    names = [cell.strip() or f"column_{i}" for i, cell in enumerate(header, start=1)]
    twice = next((col for col in names if names.count(col) > 1), None)
    if twice is not None:
        raise DataError(f"File {name} has two columns named {quote(twice)}; rename one of them.")
    return names


def sniff(text: str, prefer_tab: bool) -> tuple[str, int] | None:
    """(delimiter, index of the header among the sound non-blank records) giving a multi-column header that most
    sample records agree with, or None."""
    best, best_score = None, (0.0, 0)
    order = ("\t",) + CSV_DELIMITERS if prefer_tab else CSV_DELIMITERS
    for delimiter in dict.fromkeys(order):
        try:
            records = _sample_records(text[:SAMPLE_CHARS], delimiter)
        except csv.Error:
            continue
        if not records:
            continue
        at = header_index(records)
        width, rest = len(records[at]), records[at + 1:]
        if width < 2:
            continue
        # The last sampled record may be cut off by the sample boundary, so it does not vote.
        voters = rest[:-1] if len(rest) > 1 else rest
        agree = sum(len(r) == width for r in voters) / len(voters) if voters else 1.0
        if (agree, width) > best_score:
            best, best_score = (delimiter, at), (agree, width)
    return best


def _sample_records(text: str, delimiter: str) -> list[list[str]]:
    """The first non-blank records of the sample whose quoting is sound (garbled ones would skew the widths)."""
    tap, valid, records = _Tap(iter(io.StringIO(text, newline=""))), _record_pattern(delimiter), []
    for record in csv.reader(tap, delimiter=delimiter):
        raw = "".join(tap.take())
        if any(c.strip() for c in record) and ('"' not in raw or valid.fullmatch(raw)):
            records.append(record)
            if len(records) == SAMPLE_RECORDS:
                break
    return records


def header_index(records: list[list[str]]) -> int:
    """Which of the first non-blank records is the header: the first, unless it is a note (a lone sentence, a '#'
    comment) and a later one is clearly a header (two or more distinct names, none a number, rows below it)."""
    later = next((i for i in range(1, min(len(records), MAX_ROWS_ABOVE + 1)) if _can_head(records, i, strict=True)), 0)
    if not later or (_can_head(records, 0) and not _comment(records[0])):
        return 0
    return later


def _comment(record: list[str]) -> bool:
    """A '#' comment line (it could otherwise pass for a header)."""
    return record[0].lstrip().startswith("#")


def _can_head(records: list[list[str]], i: int, strict: bool = False) -> bool:
    """Whether record i can be the header; the first record can unless it is a lone sentence (a note)."""
    row = records[i]
    names = [c.strip() for c in row if c.strip()]
    if not strict:
        return not (len(names) == 1 and _width(row) == 1 and " " in names[0])
    return (len(names) >= 2 and i + 1 < len(records) and len(set(names)) == len(names)
            and not any(_NUMBER.fullmatch(n) for n in names))


def _width(record: list[str]) -> int:
    """The record's width up to its last non-empty cell."""
    return next((i + 1 for i in range(len(record) - 1, -1, -1) if record[i].strip()), 0)
