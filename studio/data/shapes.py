"""Detecting a dataset's shape (which column holds what) and normalising its rows into `Example`s."""
from __future__ import annotations

import datetime
import json
import math
import numbers
from dataclasses import dataclass

from studio.data.loaders import quote
from studio.errors import DataError
from studio.examples import Example

ROLES = ("instruction", "input", "output", "system")
CHAT_SHAPES = ("messages", "sharegpt")
# (column, shape name, what it means): a chat column wins over flat columns.
CHAT_COLUMNS = (
    ("messages", "messages", "chat shape (a list of role/content turns per row)"),
    ("conversations", "sharegpt", "ShareGPT shape (a list of from/value turns per row)"),
)
# (shape name, instruction column, output column, optional input column, what it means), first match wins.
FLAT_SHAPES = (
    ("alpaca", "instruction", "output", "input", "Alpaca shape (instruction + optional input -> output)"),
    ("alpaca", "instruction", "response", "input", "Alpaca shape with 'response' as the output"),
    ("question_answer", "question", "answer", "context", "question/answer shape (question -> answer)"),
    ("prompt_completion", "prompt", "completion", None, "prompt/completion shape (prompt -> completion)"),
    ("prompt_response", "prompt", "response", None, "prompt/response shape (prompt -> response)"),
    ("act_prompt", "act", "prompt", None, "role-prompt shape (the act is the instruction, the prompt the output)"),
)
# ShareGPT and chat exports name the two sides in several ways; all map onto user/assistant.
ROLE_ALIASES = {
    "system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
    "model": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
}


@dataclass(frozen=True)
class Shape:
    """A detected dataset shape: its name, the role -> column mapping, and one sentence saying why."""

    name: str
    # Flat shapes map instruction/input/output/system to columns; chat shapes map "messages" to the chat column.
    mapping: dict[str, str]
    reason: str


def column_names(rows: list[dict]) -> list[str]:
    """The union of the rows' keys, in order of first appearance."""
    if not isinstance(rows, list) or not rows:
        raise DataError("The dataset has no rows.")
    seen: dict[str, None] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DataError(f"Row {number} is not an object with named columns.")
        seen.update(dict.fromkeys(str(key) for key in row))
    return list(seen)


def detect_shape(rows: list[dict], column_map: dict[str, str] | None = None) -> Shape:
    """Work out which columns hold the instruction, input, output and system (or the chat turns)."""
    columns = column_names(rows)
    if not columns:
        raise DataError("The dataset's rows have no columns, so there is no instruction or output to learn from.")
    # A mapping whose choices are all empty (the UI's "(none)") means "detect it for me".
    if column_map and any(v is not None and str(v).strip() for v in column_map.values()):
        return _mapped_shape(columns, column_map)
    lookup = _lookup(columns)
    for column, name, what in CHAT_COLUMNS:
        if column in lookup:
            return Shape(name, {"messages": lookup[column]}, f"Column {quote(lookup[column])} found: {what}.")
    for name, instruction, output, extra, what in FLAT_SHAPES:
        if instruction in lookup and output in lookup:
            found = {"instruction": instruction, "input": extra, "output": output, "system": "system"}
            mapping = {role: lookup[col] for role, col in found.items() if col in lookup}
            return Shape(name, mapping, f"Columns {_join(list(mapping.values()))} found: {what}.")
    raise DataError(f"No known dataset shape fits the columns {_join(columns)}; map which column is the "
                    "instruction and which is the output.")


def _lookup(columns: list[str]) -> dict[str, str]:
    """Normalised (trimmed, lower-case) name -> actual column name; the first spelling wins."""
    lookup: dict[str, str] = {}
    for column in columns:
        lookup.setdefault(column.strip().lower(), column)
    return lookup


def _join(names: list[str], limit: int = 8) -> str:
    """'a', 'b' and 'c' (clipped after `limit` names)."""
    shown = [quote(n, 40) for n in names[:limit]]
    if len(names) > limit:
        return f"{', '.join(shown)} and {len(names) - limit} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _mapped_shape(columns: list[str], column_map: dict[str, str]) -> Shape:
    """A shape from an explicit role -> column mapping, checked against the columns present."""
    lookup = _lookup(columns)
    mapping: dict[str, str] = {}
    for role, column in column_map.items():
        role = str(role).strip().lower()
        if role not in ROLES:
            raise DataError(f"The column mapping names the unknown role {quote(role)}; use instruction, input, "
                            "output or system.")
        if column is None or not str(column).strip():
            continue  # An empty choice in the UI means "not mapped".
        actual = lookup.get(str(column).strip().lower())
        if actual is None:
            raise DataError(f"Column {quote(column)} (mapped to {role}) is not in the data, whose columns are "
                            f"{_join(columns)}.")
        mapping[role] = actual
    if "instruction" not in mapping or "output" not in mapping:
        raise DataError("The column mapping must name both the instruction column and the output column.")
    if mapping["instruction"] == mapping["output"]:
        raise DataError(f"The column mapping uses {quote(mapping['output'])} as both instruction and output.")
    described = " and ".join(f"{quote(col, 40)} as {role}" for role, col in mapping.items())
    return Shape("mapped", mapping, f"Columns mapped by hand: {described}.")


def to_examples(rows: list[dict], shape: Shape) -> list[Example]:
    """Convert every row to an `Example`, raising DataError that names the row for anything unusable."""
    column_names(rows)  # Validates that rows is a non-empty list of objects.
    if shape.name in CHAT_SHAPES:
        column = shape.mapping["messages"]
        return [_chat_example(_get(row, column), number, column) for number, row in enumerate(rows, start=1)]
    if "instruction" not in shape.mapping or "output" not in shape.mapping:
        raise DataError(f"Shape {quote(shape.name)} does not say which column is the instruction and which the output.")
    return [_flat_example(row, shape.mapping, number) for number, row in enumerate(rows, start=1)]


def _get(row: dict, column: str) -> object:
    """The row's value for a column, tolerating other rows' spelling of the name (case, spaces)."""
    if column in row:
        return row[column]
    wanted = column.strip().lower()
    return next((v for k, v in row.items() if str(k).strip().lower() == wanted), None)


def _flat_example(row: dict, mapping: dict[str, str], number: int) -> Example:
    """One flat row (Alpaca, question/answer, ...) as an Example."""
    values = {role: text_value(_get(row, col), col, number) for role, col in mapping.items() if role in ROLES}
    return Example(instruction=values["instruction"], output=values["output"],
                   input=values.get("input", ""), system=values.get("system", ""))


def text_value(value: object, column: str, number: int) -> str:
    """A cell as text: None -> "", numbers and booleans as strings, nested values refused."""
    if value is None:
        return ""
    if isinstance(value, str):
        # Windows line endings would otherwise reach the model as stray "\r" tokens.
        return value.replace("\r\n", "\n").rstrip("\r")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return ""  # Parquet/pandas write missing text as NaN.
    if isinstance(value, (numbers.Number, datetime.date, datetime.time)):
        return str(value)
    nested = isinstance(value, (dict, list, tuple, set))
    kind = "a nested list or object" if nested else f"a {type(value).__name__} value"
    raise DataError(f"Row {number} has {kind} in column {quote(column)}, which must hold text.")


def _chat_example(value: object, number: int, column: str) -> Example:
    """One chat row as an Example: system, earlier turns as history, last user/assistant pair as the task."""
    turns = _turns(value, number, column)
    leading = next((i for i, (role, _) in enumerate(turns) if role != "system"), len(turns))
    system = [content for _, content in turns[:leading]]
    if any(role == "system" for role, _ in turns[leading:]):
        raise DataError(f"Row {number} has a system message after the conversation started.")
    chat = turns[leading:]
    if not chat:
        raise DataError(f"Row {number} has no user or assistant turns in column {quote(column)}.")
    for i, (role, _) in enumerate(chat):
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected and i == 0:
            raise DataError(f"Row {number} starts with an assistant turn, but a chat must start with a user turn.")
        if role != expected:
            raise DataError(f"Row {number} has two {role} turns in a row (turns {leading + i} and {leading + i + 1}).")
    if chat[-1][0] != "assistant":
        raise DataError(f"Row {number} does not end with an assistant turn, so it has no answer to learn from.")
    return Example(instruction=chat[-2][1], output=chat[-1][1], system="\n\n".join(system), history=tuple(chat[:-2]))


def _turns(value: object, number: int, column: str) -> list[tuple[str, str]]:
    """A chat cell as (role, content) pairs with normalised roles; a JSON string (from CSV) is parsed."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise DataError(f"Row {number} has text in column {quote(column)} where a list of chat turns "
                            "belongs.") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(f"Row {number} has no list of chat turns in column {quote(column)}.")
    turns = []
    for i, turn in enumerate(value, start=1):
        if not isinstance(turn, dict):
            raise DataError(f"Turn {i} of row {number} is not an object with a role and a content.")
        raw_role = turn.get("role", turn.get("from"))
        role = ROLE_ALIASES.get(str(raw_role).strip().lower()) if isinstance(raw_role, str) else None
        if role is None:
            found = "no role" if raw_role is None else f"the unknown role {quote(raw_role)}"
            raise DataError(f"Turn {i} of row {number} has {found}; use system, user or assistant "
                            "(or ShareGPT's human and gpt).")
        turns.append((role, _content(turn.get("content", turn.get("value")), column, number)))
    return turns


def _content(value: object, column: str, number: int) -> str:
    """A turn's content; OpenAI-style lists of {"type": "text", "text": ...} parts are joined."""
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
        return "".join(part["text"] for part in value).replace("\r\n", "\n").rstrip("\r")
    return text_value(value, column, number)
