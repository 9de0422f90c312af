"""Markdown building blocks for the report and the model cards: escaped table cells, inline code, fences, tables.

The one Markdown escaper of the project: user text (instructions, answers, names) is escaped into table cells so
no row can inject markup (a `#` cannot start a heading, a `|` cannot end a cell).
"""
from __future__ import annotations

import re
from html import escape
from typing import Any


def cell(text: Any) -> str:
    """A Markdown table cell: user text stays literal (no HTML, markup or pipes), newlines as <br>."""
    safe = escape(str(text), quote=False)
    for char in "\\`*_[]|#":
        safe = safe.replace(char, "\\" + char)
    return safe.replace("\r\n", "\n").replace("\n", "<br>") or " "


def code(text: Any) -> str:
    """Inline code for a name: Markdown escapes do not apply inside backticks, so backticks and newlines go."""
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def fenced(text: str, language: str = "text") -> list[str]:
    """A fenced block whose fence is longer than any run of backticks in the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, text, fence]


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """Markdown table lines with every cell escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
