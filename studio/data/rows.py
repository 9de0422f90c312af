"""One raw row -> one `Example`: obvious, lossless repairs are made and listed; anything else is a `Skip`.

Repairs (each appended to the caller's `repairs` list as (reason key, detail)): role aliases mapped (gpt, bing,
bard, chatgpt, model -> assistant; human, prompter -> user), empty turns dropped, consecutive turns of one speaker
merged, assistant turns before the first user turn dropped, user turns after the last answer dropped. A row that
cannot be used raises `Skip(key, detail)`; the details are phrases that follow "Row N ...".
"""
from __future__ import annotations

import datetime
import json
import math
import numbers

from studio.data.loaders import quote
from studio.data.words import plural
from studio.examples import Example

# Chat exports name the speakers in several ways; all map onto system/user/assistant/tool.
ROLE_ALIASES = {
    "system": "system", "user": "user", "human": "user", "prompter": "user",
    "assistant": "assistant", "gpt": "assistant", "model": "assistant", "chatgpt": "assistant",
    "bing": "assistant", "bard": "assistant", "tool": "tool", "function": "tool", "ipython": "tool",
}
# The role names each shape uses itself; any other known alias is mapped and counted as a repair.
NATIVE_ROLES = {
    "sharegpt": {"system", "human", "gpt"},
    "messages": {"system", "user", "assistant", "tool"},
    "oasst": {"system", "prompter", "assistant"},
    "preference": {"system", "user", "assistant", "tool"},
}


class Skip(Exception):
    """A row that cannot be used: `key` names the reason (see summary.SKIPS), `detail` says what is wrong."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(detail)
        self.key, self.detail = key, detail


def get(row: dict, column: str) -> object:
    """The row's value for a column, tolerating other rows' spelling of the name (case, spaces)."""
    if column in row:
        return row[column]
    wanted = column.strip().lower()
    return next((v for k, v in row.items() if str(k).strip().lower() == wanted), None)


def text_value(value: object, column: str) -> str:
    """A cell as text: None -> "", numbers and booleans as strings; a nested value is a Skip."""
    if type(value) is str and "\r" not in value:  # the common case, first: a million rows pass here
        return value
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
    raise Skip("nested_value", f"has {kind} in column {quote(column)}, which must hold text")


def flat_example(row: dict, mapping: dict[str, str], repairs: list) -> Example:
    """One flat row (Alpaca, Dolly, question/answer, ...) as an Example, whitespace around its texts trimmed (a
    repair); no answer is a Skip."""
    output = text_value(get(row, mapping["output"]), mapping["output"])
    if not output or output.isspace():
        raise Skip("empty_output", f"has an empty output in column {quote(mapping['output'])}")
    instruction, input_text, system = (text_value(get(row, mapping[role]), mapping[role]) if role in mapping else ""
                                       for role in ("instruction", "input", "system"))
    texts = (instruction, input_text, output, system)
    if any(t and (t[0].isspace() or t[-1].isspace()) for t in texts):  # rare: most rows pass straight through
        trimmed = tuple(trim(t) for t in texts)
        roles = [role for role, a, b in zip(("instruction", "input", "output", "system"), texts, trimmed) if a != b]
        if roles:  # code indentation alone is kept, not a repair
            named = roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} and {roles[-1]}"
            repairs.append(("whitespace", f"has spaces or blank lines around its {named} (trimmed)"))
        instruction, input_text, output, system = trimmed
    return Example(instruction, output, input_text, system)


def trim(text: str) -> str:
    """Text without surrounding whitespace, except a first line's code indentation (more lines follow, or it is at
    least four columns deep): a solution's first line keeps its place in the function."""
    if not text or not (text[0].isspace() or text[-1].isspace()):
        return text  # the common case, first
    body = text.strip()
    lead = text[:len(text) - len(text.lstrip())]
    indent = lead[lead.rfind("\n") + 1:]
    code = body and indent and ("\n" in body or len(indent.expandtabs(4)) >= 4)
    return indent + body if code else body


def preference_example(row: dict, mapping: dict[str, str], repairs: list) -> Example:
    """A prompt/chosen/rejected row: the chosen answer is the output (a chat when chosen holds turns)."""
    prompt, chosen = get(row, mapping["instruction"]), get(row, mapping["output"])
    if not isinstance(chosen, (list, tuple)):
        return flat_example(row, mapping, repairs)
    turns = chat_turns(chosen, "preference", repairs)
    if not any(role == "user" for role, _ in turns):  # chosen holds only the answer: the prompt comes first
        before = (chat_turns(prompt, "preference", repairs) if isinstance(prompt, (list, tuple))
                  else [("user", text_value(prompt, mapping["instruction"]))])
        turns = before + turns
    return example_from_turns(turns, repairs)


def chat_example(value: object, shape: str, repairs: list) -> Example:
    """One chat row (messages, ShareGPT conversations, an OASST thread) as an Example."""
    return example_from_turns(chat_turns(value, shape, repairs), repairs)


def chat_turns(value: object, shape: str, repairs: list) -> list[tuple[str, str]]:
    """A chat cell as (role, content) pairs with roles mapped; a JSON string (from CSV) is parsed first."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise Skip("not_turns", "has text where a list of chat turns belongs") from None
    if value is None or (isinstance(value, (list, tuple)) and not value):
        raise Skip("no_turns", "has no turns")
    if not isinstance(value, (list, tuple)):
        raise Skip("not_turns", "has no list of chat turns")
    turns, aliases = [], []
    for i, turn in enumerate(value, start=1):
        if not isinstance(turn, dict):
            raise Skip("bad_turn", f"has a turn ({i}) that is not an object with a role and a content")
        raw_role = turn.get("role", turn.get("from"))
        name = raw_role.strip().lower() if isinstance(raw_role, str) else None
        role = ROLE_ALIASES.get(name) if name is not None else None
        if role is None:
            found = "no role" if raw_role is None else f"the unknown role {quote(raw_role, 30)}"
            raise Skip("unknown_role", f"has a turn ({i}) with {found}")
        if name not in NATIVE_ROLES[shape]:
            aliases.append(f"{quote(raw_role, 30)} as {role}")
        turns.append((role, turn_content(turn, i)))
    if aliases:
        repairs.append(("role_alias", f"uses the role {', '.join(dict.fromkeys(aliases))}"))
    return turns


def turn_content(turn: dict, index: int) -> str:
    """A turn's text; OpenAI-style text parts are joined and an assistant's tool calls are kept as JSON."""
    value = turn.get("content", turn.get("value", turn.get("text")))
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
        value = "".join(part["text"] for part in value)
    try:
        text = text_value(value, "content")
    except Skip:
        raise Skip("nested_value", f"has a turn ({index}) whose content is not text") from None
    calls = turn.get("tool_calls")
    if calls:  # the call is what the model must learn to write, so it stays in the trained text
        text = (text + "\n" if text else "") + json.dumps(calls, ensure_ascii=False)
    return text


def example_from_turns(turns: list[tuple[str, str]], repairs: list) -> Example:
    """Tidy the turns (drop empties, merge repeats, trim the ends) and build the Example, or Skip."""
    turns = _merge_repeats(_drop_empty(turns, repairs), repairs)
    lead = next((i for i, (role, _) in enumerate(turns) if role != "system"), len(turns))
    system, chat = "\n\n".join(c for _, c in turns[:lead]), turns[lead:]
    if any(role == "system" for role, _ in chat):
        raise Skip("system_mid_chat", "has a system turn after the conversation started")
    first_user = next((i for i, (role, _) in enumerate(chat) if role == "user"), None)
    if first_user is None:
        raise Skip("no_answer", "has no user turn")
    if first_user:
        repairs.append(("leading_assistant", f"starts with {plural(first_user, 'turn')} before the first user "
                                             "turn (dropped)"))
        chat = chat[first_user:]
    last = max((i for i, (role, _) in enumerate(chat) if role == "assistant"), default=None)
    if last is None:
        raise Skip("no_answer", "has no assistant answer after its user turn")
    if last < len(chat) - 1:
        repairs.append(("trailing_user", f"ends with {plural(len(chat) - 1 - last, 'turn')} after the last answer "
                                         "(dropped)"))
        chat = chat[:last + 1]
    (prompt_role, prompt), (_, answer) = chat[-2], chat[-1]
    return Example(instruction=prompt, output=answer, system=system, history=tuple(chat[:-2]),
                   prompt_role=prompt_role)


def _drop_empty(turns: list[tuple[str, str]], repairs: list) -> list[tuple[str, str]]:
    """Turns with text only; a chat of nothing but empty turns is a Skip."""
    kept = [(role, content) for role, content in turns if content.strip()]
    if not kept:
        raise Skip("empty_chat", f"has {plural(len(turns), 'turn')}, all of them empty")
    if len(kept) < len(turns):
        repairs.append(("empty_turn", f"has {plural(len(turns) - len(kept), 'empty turn')} (dropped)"))
    return kept


def _merge_repeats(turns: list[tuple[str, str]], repairs: list) -> list[tuple[str, str]]:
    """Consecutive turns of one speaker joined by a blank line (tool results stay apart: each answers a call)."""
    merged: list[tuple[str, str]] = []
    for role, content in turns:
        if merged and merged[-1][0] == role and role != "tool":
            merged[-1] = (role, f"{merged[-1][1]}\n\n{content}")
        else:
            merged.append((role, content))
    if len(merged) < len(turns):
        repairs.append(("repeated_role", f"has {plural(len(turns) - len(merged), 'turn')} repeating the previous "
                                         "speaker (merged)"))
    return merged
