"""What loading did to each row: repairs and skips counted per reason, with a few rows of each to look at.

A row-level problem never refuses a file. A row is repaired when the fix is obvious and loses nothing (a leading
assistant turn dropped, a role alias mapped, two turns of one speaker merged), skipped otherwise (no turns, no
answer, a nested value where text belongs), and every repair or skip is counted under its reason. `strict` turns
the first of them into a refusal instead.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from studio.errors import DataError

# reason key -> the words the summary line uses; the order is the order the summary lists them in.
REPAIRS = {
    "leading_assistant": "leading assistant turn",
    "trailing_user": "trailing user turn",
    "role_alias": "role alias",
    "empty_turn": "empty turn",
    "repeated_role": "repeated role",
    "short_row": "missing trailing cells",
    "extra_empty_cells": "extra empty cells",
    "whitespace": "whitespace trimmed",
}
SKIPS = {
    "no_turns": "no turns",
    "empty_chat": "only empty turns",
    "no_answer": "no answer",
    "empty_output": "empty output",
    "nested_value": "nested value where text belongs",
    "not_turns": "no list of turns",
    "bad_turn": "turn is not an object",
    "unknown_role": "unknown role",
    "system_mid_chat": "system turn mid-chat",
    "not_object": "not an object",
    "bad_json": "not valid JSON",
    "long_row": "more values than the header",
    "garbled_row": "garbled CSV row",
    "header_row": "repeated header row",
}
NOTES_PER_REASON = 3
NOTE_CHARS = 300


@dataclass(frozen=True)
class RowNote:
    """One row that was repaired or skipped: its number in the file, what was wrong, and the row as text."""

    row: int
    detail: str
    text: str


@dataclass(frozen=True)
class LoadSummary:
    """Counts per reason of the rows repaired and skipped while loading, with a few example rows per reason."""

    n_rows: int
    n_kept: int
    n_repaired: int = 0
    repaired: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, list[RowNote]] = field(default_factory=dict)
    # A JSON array cut off mid-record whose complete records were kept: how many there were.
    truncated_after: int | None = None
    # Shapes that group several rows into one conversation (OASST): the number of message rows read.
    message_rows: int | None = None
    # What reading did to the file besides its rows ("skipped 2 lines above the header", "ignored 1 blank line").
    file_notes: tuple[str, ...] = ()

    @property
    def n_skipped(self) -> int:
        """Rows that were not kept."""
        return self.n_rows - self.n_kept

    @property
    def clean(self) -> bool:
        """True when every row was kept as it was."""
        return not self.repaired and not self.skipped and self.truncated_after is None

    def line(self) -> str:
        """One line: 'Kept 17,545 of 17,671 rows: 6,401 repaired (leading assistant turn), 126 skipped (no turns).'"""
        unit = "conversations" if self.message_rows is not None else "rows"
        parts = [f"{n:,} repaired ({REPAIRS[k]})" for k, n in self.repaired.items()]
        parts += [f"{n:,} skipped ({SKIPS[k]})" for k, n in self.skipped.items()]
        head = (f"Kept all {self.n_rows:,} {unit}" if self.n_kept == self.n_rows
                else f"Kept {self.n_kept:,} of {self.n_rows:,} {unit}")
        grouped = f" (grouped from {self.message_rows:,} message rows)" if self.message_rows is not None else ""
        notes = "".join(f"; {note}" for note in self.file_notes)
        cut = (f"; the file is cut off after its {self.truncated_after:,} complete records"
               if self.truncated_after is not None else "")
        return f"{head}{grouped}" + (f": {', '.join(parts)}" if parts else " as they were") + f"{notes}{cut}."

    def reasons(self) -> list[tuple[str, str, int, list[RowNote]]]:
        """(key, 'repaired'/'skipped', count, example rows) for every reason that occurred, repairs first."""
        out = [(k, "repaired", n, self.notes.get(k, [])) for k, n in self.repaired.items()]
        return out + [(k, "skipped", n, self.notes.get(k, [])) for k, n in self.skipped.items()]


def reason_label(key: str) -> str:
    """The summary's words for a reason key."""
    return REPAIRS.get(key) or SKIPS[key]


class RowLog:
    """Collects repairs and skips while rows are converted; in strict mode the first one refuses the file."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.counts: dict[str, int] = {}
        self.notes: dict[str, list[RowNote]] = {}
        self.n_repaired = 0
        self.n_skipped = 0
        self.truncated_after: int | None = None
        self.file_notes: list[str] = []

    def file_note(self, note: str) -> None:
        """Record what reading did to the file besides its rows (a phrase for the summary line)."""
        self.file_notes.append(note)

    def repaired(self, row: int, problems: list[tuple[str, str]], raw: object) -> None:
        """Record the repairs made to one row (each reason counted once per row)."""
        if not problems:
            return
        self.n_repaired += 1
        first: dict[str, str] = {}
        for key, detail in problems:
            first.setdefault(key, detail)
        for key, detail in first.items():
            self._record(key, row, detail, raw)

    def skipped(self, key: str, row: int, detail: str, raw: object) -> None:
        """Record a row that cannot be used."""
        self._record(key, row, detail, raw)
        self.n_skipped += 1

    def _record(self, key: str, row: int, detail: str, raw: object) -> None:
        if self.strict:
            raise DataError(f"Row {row} {detail}; strict mode refuses a file with irregular rows "
                            "(turn it off to repair or skip them).")
        self.counts[key] = self.counts.get(key, 0) + 1
        notes = self.notes.setdefault(key, [])
        if len(notes) < NOTES_PER_REASON:
            notes.append(RowNote(row, detail, row_text(raw)))

    def summary(self, n_rows: int, n_kept: int, message_rows: int | None = None) -> LoadSummary:
        """The finished summary, reasons in their fixed order."""
        return LoadSummary(
            n_rows=n_rows, n_kept=n_kept, n_repaired=self.n_repaired,
            repaired={k: self.counts[k] for k in REPAIRS if k in self.counts},
            skipped={k: self.counts[k] for k in SKIPS if k in self.counts},
            notes=dict(self.notes), truncated_after=self.truncated_after, message_rows=message_rows,
            file_notes=tuple(self.file_notes),
        )


def row_text(raw: object, limit: int = NOTE_CHARS) -> str:
    """A row as compact JSON (or its text), clipped, for showing next to its reason."""
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = json.dumps(raw, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            text = repr(raw)
    return text if len(text) <= limit else text[:limit - 1] + "…"
