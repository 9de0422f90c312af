"""Names and numbers fit for a one-line message: quoted names, plurals, sizes, and paths as the user gave them."""
from __future__ import annotations

import unicodedata
from pathlib import Path


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


def path_label(spec: str | Path) -> str:
    """A file as messages name it: a relative path as the user typed it (folder and all), an absolute one by its
    file name (an upload's temporary folder means nothing to the user)."""
    text = str(spec)
    try:
        shown = Path(text).name if Path(text).is_absolute() else text
    except ValueError:
        shown = text
    if len(shown) > 120:  # keep the end of a long path: the file name is what tells it apart
        return "'..." + quote(shown[-117:], 120)[1:]
    return quote(shown, 120)
