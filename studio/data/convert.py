"""Raw records -> `Example`s, streamed: the shape is detected on the first rows, then every row is converted as it
arrives (the raw row is not kept), repaired or skipped, and counted in a `RowLog`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice

from studio.data.loaders import quote
from studio.data.rows import Skip, chat_example, flat_example, get, preference_example
from studio.data.shapes import CHAT_SHAPES, Shape, column_names, detect_shape
from studio.data.summary import LoadSummary, RowLog, reason_label
from studio.data.threads import ThreadCollector
from studio.errors import DataError, ShapeError
from studio.examples import Example

DETECT_ROWS = 1000  # rows the shape is detected on; the rest stream past
Record = tuple[int, dict, tuple]


@dataclass
class Converted:
    """The examples of one source, its shape and columns, and what loading did to its rows."""

    examples: list[Example]
    shape: Shape
    columns: list[str]
    summary: LoadSummary
    chat: bool  # rows held chat turns (the default template for them is a chat template)


def records_of(rows: list[dict]) -> Iterator[Record]:
    """In-memory rows (a sample, a Hub split) as numbered records."""
    return ((number, row, ()) for number, row in enumerate(rows, start=1))


def convert_records(records: Iterable[Record], title: str, column_map: dict | None = None,
                    log: RowLog | None = None) -> Converted:
    """Detect the shape on the first rows, convert every row, and refuse only when nothing usable is left."""
    log = log or RowLog()
    stream = iter(records)
    head = list(islice(stream, DETECT_ROWS))
    if not head:
        raise DataError(f"Nothing in {quote(title)} can be trained on: {_reasons(log, log.n_skipped)}.")
    columns: dict[str, None] = dict.fromkeys(column_names([row for _, row, _ in head]))
    try:
        shape = detect_shape([row for _, row, _ in head], column_map or None)
    except DataError as exc:
        for _, row, _ in stream:  # the mapping needs every column, not only those of the first rows
            columns.update(dict.fromkeys(str(key) for key in row))
        raise ShapeError(str(exc), list(columns)) from None
    message_rows: int | None = None
    if shape.name == "oasst":
        examples, message_rows = _threads(chain(head, stream), shape, log, columns)
    else:
        examples = _rows(chain(head, stream), _converter(shape), log, columns)
    summary = log.summary(len(examples) + log.n_skipped, len(examples), message_rows)
    if not examples:
        hint = "; check which column holds the output" if "empty_output" in summary.skipped else ""
        raise ShapeError(f"Nothing in {quote(title)} can be trained on: {_reasons(log, summary.n_rows)}{hint}.",
                         list(columns))
    chat = shape.name in CHAT_SHAPES or any(e.history or e.system for e in examples[:DETECT_ROWS])
    return Converted(examples, shape, list(columns), summary, chat and shape.name != "mapped")


def _converter(shape: Shape) -> Callable[[dict, list], Example]:
    """The function turning one row of this shape into an Example (raising Skip)."""
    mapping = shape.mapping
    if shape.name in CHAT_SHAPES:
        column = mapping["messages"]
        return lambda row, repairs: chat_example(get(row, column), shape.name, repairs)
    if "instruction" not in mapping or "output" not in mapping:
        raise DataError(f"Shape {quote(shape.name)} does not say which column is the instruction and which the output.")
    if shape.name == "preference":
        return lambda row, repairs: preference_example(row, mapping, repairs)
    return lambda row, repairs: flat_example(row, mapping, repairs)


def _rows(records: Iterator[Record], convert: Callable[[dict, list], Example], log: RowLog,
          columns: dict[str, None]) -> list[Example]:
    """Convert row by row; the raw row is dropped as soon as its Example exists."""
    examples: list[Example] = []
    last_keys: object = None
    for number, row, read_repairs in records:
        keys = row.keys()
        if keys != last_keys:  # most rows share their keys: a cheap check before updating the union
            columns.update(dict.fromkeys(str(key) for key in keys))
            last_keys = keys
        repairs = list(read_repairs)
        try:
            example = convert(row, repairs)
        except Skip as skip:
            log.skipped(skip.key, number, skip.detail, row)
            continue
        if repairs:
            log.repaired(number, repairs, row)
        examples.append(example)
    return examples


def _threads(records: Iterator[Record], shape: Shape, log: RowLog,
             columns: dict[str, None]) -> tuple[list[Example], int]:
    """OASST message rows grouped into conversations: (their examples, the number of message rows)."""
    collector = ThreadCollector(shape.mapping)
    for number, row, _ in records:
        columns.update(dict.fromkeys(str(key) for key in row))
        collector.add(number, row)
    examples: list[Example] = []
    for number, turns in collector.conversations():
        repairs: list = []
        try:
            example = chat_example(turns, "oasst", repairs)
        except Skip as skip:
            log.skipped(skip.key, number, skip.detail, turns)
            continue
        log.repaired(number, repairs, turns)
        examples.append(example)
    return examples, collector.n_messages


def _reasons(log: RowLog, n_rows: int) -> str:
    """'all 20 rows were skipped (20 empty output)' for the nothing-usable sentence."""
    counts = ", ".join(f"{n:,} {reason_label(k)}" for k, n in log.counts.items())
    rows = {0: "no row could be read", 1: "its only row was skipped"}.get(n_rows, f"all {n_rows:,} rows were skipped")
    return f"{rows} ({counts})" if counts else rows


def to_examples(rows: list[dict], shape: Shape, log: RowLog | None = None) -> list[Example]:
    """Every usable row of an in-memory list as an Example (problems repaired or skipped into `log`)."""
    column_names(rows)  # validates that rows is a non-empty list of objects
    log = log or RowLog()
    if shape.name == "oasst":
        return _threads(records_of(rows), shape, log, {})[0]
    return _rows(records_of(rows), _converter(shape), log, {})
