"""Detecting a dataset's shape: which column holds the instruction, input, output and system, or the chat turns.

Common public shapes are found without a mapping: Alpaca (with or without an `input` column), Dolly
(instruction/context/response), question/answer, prompt/completion, preference data (prompt/chosen: the chosen
answer is trained), OpenAI chat `messages`, ShareGPT `conversations`, and OASST-style message rows (`text` +
`role`, grouped into conversations by a conversation id and threaded by parent ids). Other flat files are read by
the table of common column names in `columns` when it is unambiguous (question + expected_answer, Query + SQL, ...).
"""
from __future__ import annotations

from dataclasses import dataclass

from studio.data.columns import ROLE_NAMES, guess_roles
from studio.data.loaders import quote
from studio.errors import DataError

ROLES = ("instruction", "input", "output", "system")
CHAT_SHAPES = ("messages", "sharegpt", "oasst")
# (column, shape name, what it means): a chat column wins over flat columns.
CHAT_COLUMNS = (
    ("messages", "messages", "chat shape (a list of role/content turns per row)"),
    ("conversations", "sharegpt", "ShareGPT shape (a list of from/value turns per row)"),
)
# (shape name, instruction column, output column, input column, whether the input column is required, meaning);
# the first match wins, so a shape that needs more columns comes before one that needs fewer.
FLAT_SHAPES = (
    ("dolly", "instruction", "response", "context", True, "Dolly shape (instruction + context -> response)"),
    ("alpaca", "instruction", "output", "input", False, "Alpaca shape (instruction + optional input -> output)"),
    ("alpaca", "instruction", "response", "input", False, "Alpaca shape with 'response' as the output"),
    ("question_answer", "question", "answer", "context", False, "question/answer shape (question -> answer)"),
    ("prompt_completion", "prompt", "completion", None, False, "prompt/completion shape (prompt -> completion)"),
    ("prompt_response", "prompt", "response", None, False, "prompt/response shape (prompt -> response)"),
    ("preference", "prompt", "chosen", None, False,
     "preference shape (prompt -> the chosen answer; the rejected one is not trained)"),
    ("act_prompt", "act", "prompt", None, False,
     "role-prompt shape (the act is the instruction, the prompt the output)"),
)
# OASST-style message rows: the columns that name the conversation a message belongs to, its id, its parent, its rank.
OASST_GROUPS = ("message_tree_id", "conversation_id", "thread_id", "tree_id", "dialog_id", "conversation")
OASST_LINKS = {"id": ("message_id", "id"), "parent": ("parent_id", "parent_message_id", "parent"), "rank": ("rank",)}


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
    oasst = _oasst_shape(lookup)
    if oasst is not None:
        return oasst
    for name, instruction, output, extra, needs_extra, what in FLAT_SHAPES:
        if instruction in lookup and output in lookup and (not needs_extra or extra in lookup):
            found = {"instruction": instruction, "input": extra, "output": output, "system": "system"}
            mapping = {role: lookup[col] for role, col in found.items() if col in lookup}
            return Shape(name, mapping, f"Columns {_join(list(mapping.values()))} found: {what}.")
    return _named_shape(columns)


def _named_shape(columns: list[str]) -> Shape:
    """A shape from the table of common column names when it is unambiguous, else DataError naming the candidates."""
    guess = guess_roles(columns)
    instruction, output = guess.only("instruction"), guess.only("output")
    if instruction is None and not guess.exact["instruction"]:
        instruction = guess.only("input")  # {"input": ..., "output": ...} files: the input is the prompt
    head = f"No known dataset shape fits the columns {_join(columns)}"
    ask = "map which column is the instruction and which is the output."
    for role, found in (("instruction", instruction), ("output", output)):
        if found is None and len(guess.exact[role]) > 1:
            raise DataError(f"{head}, and {_join(guess.exact[role])} could each be the {role}; {ask}")
    if output is None and guess.near_output:
        raise DataError(f"{head}, and none is named like an answer, though {_join(guess.near_output)} could hold "
                        f"it; {ask}")
    if output is None and instruction is not None:
        examples = ", ".join(ROLE_NAMES["output"][:4])
        raise DataError(f"{head}: none looks like an answer ({examples}, ...), and training needs the answer the "
                        "model should learn to give.")
    if output is None:
        raise DataError(f"{head}; {ask}")
    if instruction is None:
        raise DataError(f"{head}, and {quote(output)} looks like the answer but no column is named like the "
                        f"instruction; {ask}")
    mapping = {"instruction": instruction, "output": output}
    for role in ("input", "system"):
        found = guess.only(role)
        if found is not None and found not in mapping.values():
            mapping[role] = found
    described = ", ".join(f"{quote(column, 40)} as {role}" for role, column in mapping.items())
    return Shape("common_names", mapping, f"Columns taken by their common names: {described}.")


def _oasst_shape(lookup: dict[str, str]) -> Shape | None:
    """Message rows (`text` + `role` + a conversation id), as OpenAssistant publishes them, else None."""
    group = next((lookup[c] for c in OASST_GROUPS if c in lookup), None)
    if group is None or "text" not in lookup or "role" not in lookup:
        return None
    mapping = {"text": lookup["text"], "role": lookup["role"], "group": group}
    for key, names in OASST_LINKS.items():
        found = next((lookup[c] for c in names if c in lookup), None)
        if found is not None:
            mapping[key] = found
    threaded = " and threaded by their parent ids, following the best-ranked reply" if "parent" in mapping else ""
    return Shape("oasst", mapping, f"Columns 'text', 'role' and {quote(group)} found: OASST shape (message rows "
                                   f"grouped into conversations by {quote(group)}{threaded}).")


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


