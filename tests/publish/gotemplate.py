"""Just enough of Go's text/template and Ollama's Modelfile parser to check a generated Modelfile without Ollama.

Independent of studio.publish.ollama: a small interpreter of the subset the Modelfile uses (text, actions, if / else
if / else, range $i, $m := ..., variables with := and =, eq ne and or not len slice, fields, string literals), with
Go's semantics where they matter (a missing map key prints "<no value>", empty values are false, assignment
changes the variable of the enclosing scope), and a port of Ollama's Modelfile parser (`parser.ParseFile`).
"""
from __future__ import annotations

import json
import re
from typing import Any

MISSING = object()
_TOKEN = re.compile(r'\s*("(?:\\.|[^"\\])*"|\(|\)|:=|=|,|\$?[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*|\$(?:\.[A-Za-z_]\w*)*|\.[A-Za-z_][\w.]*|\.|-?\d+)')


def _lex(action: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(action.rstrip()):
        match = _TOKEN.match(action, pos)
        if not match:
            raise SyntaxError(f"cannot lex {action[pos:]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _split_actions(source: str) -> list[str]:
    """Text and "{{...}}" actions; an action ends at the first "}}" outside a quoted string, as in Go's lexer."""
    parts, pos = [], 0
    while (start := source.find("{{", pos)) >= 0:
        parts.append(source[pos:start])
        i, quoted = start + 2, False
        while quoted or not source.startswith("}}", i):
            if i >= len(source):
                raise SyntaxError("unclosed action")
            quoted = (not quoted) if source[i] == '"' else quoted
            i += 2 if quoted and source[i] == "\\" else 1
        parts.append(source[start:i + 2])
        pos = i + 2
    return [*parts, source[pos:]]


def _parse(source: str) -> list:
    """Nodes: str (text), ("expr", tokens), ("if", [(cond, body)], else_body), ("range", i, m, tokens, body),
    ("set", name, tokens, declare)."""
    parts = _split_actions(source)
    stack: list[Any] = [[]]
    for part in parts:
        if not part.startswith("{{"):
            if part:
                stack[-1].append(part)
            continue
        inner = part[2:-2]
        if inner.startswith("-") or inner.endswith("-"):
            raise SyntaxError("trim markers are not expected in the studio's templates")
        tokens = _lex(inner.strip())
        head = tokens[0] if tokens else ""
        if head == "if":
            node = ["if", [[tokens[1:], []]], None]
            stack[-1].append(node)
            stack.append(node[1][0][1])
        elif head == "else":
            stack.pop()
            node = _open_if(stack[-1])
            if tokens[1:2] == ["if"]:
                node[1].append([tokens[2:], []])
                stack.append(node[1][-1][1])
            else:
                node[2] = []
                stack.append(node[2])
        elif head == "range":
            names = [t for t in tokens[1:tokens.index(":=")] if t != ","]
            node = ["range", *names, tokens[tokens.index(":=") + 1:], []]
            stack[-1].append(node)
            stack.append(node[4])
        elif head == "end":
            stack.pop()
        elif len(tokens) > 2 and tokens[1] in (":=", "="):
            stack[-1].append(["set", tokens[0], tokens[2:], tokens[1] == ":="])
        else:
            stack[-1].append(["expr", tokens])
    if len(stack) != 1:
        raise SyntaxError("unclosed action")
    return stack[0]


def _open_if(body: list) -> list:
    return next(node for node in reversed(body) if isinstance(node, list) and node[0] == "if")


def _truth(value: Any) -> bool:
    return value is not MISSING and bool(value)


class _Scope:
    def __init__(self, root: Any):
        self.frames: list[dict[str, Any]] = [{"$": root}]

    def get(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise NameError(f"undefined variable {name}")

    def assign(self, name: str, value: Any) -> None:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise NameError(f"assignment to undeclared variable {name}")


def _field(value: Any, path: list[str]) -> Any:
    for name in path:
        value = value.get(name, MISSING) if isinstance(value, dict) else MISSING
    return value


FUNCS = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "not": lambda a: not _truth(a),
    "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truth(x)), a[-1]),
    "len": len, "slice": lambda seq, start=0, end=None: seq[start:end],
}


def _operand(tokens: list[str], pos: int, dot: Any, scope: _Scope) -> tuple[Any, int]:
    token = tokens[pos]
    if token == "(":
        depth, end = 1, pos + 1
        while depth:
            depth += {"(": 1, ")": -1}.get(tokens[end], 0)
            end += 1
        return _call(tokens[pos + 1:end - 1], dot, scope), end
    if token.startswith('"'):
        return json.loads(token), pos + 1
    if token in ("true", "false"):
        return token == "true", pos + 1
    if re.fullmatch(r"-?\d+", token):
        return int(token), pos + 1
    if token.startswith("$"):
        name, _, rest = token.partition(".")
        return _field(scope.get(name), rest.split(".") if rest else []), pos + 1
    if token.startswith("."):
        return (dot if token == "." else _field(dot, token[1:].split("."))), pos + 1
    raise SyntaxError(f"unexpected {token!r}")


def _call(tokens: list[str], dot: Any, scope: _Scope) -> Any:
    if tokens[0] in FUNCS:
        args, pos = [], 1
        while pos < len(tokens):
            value, pos = _operand(tokens, pos, dot, scope)
            args.append(value)
        return FUNCS[tokens[0]](*args)
    value, pos = _operand(tokens, 0, dot, scope)
    if pos != len(tokens):
        raise SyntaxError(f"extra tokens in {tokens}")
    return value


def _run(nodes: list, dot: Any, scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif node[0] == "expr":
            value = _call(node[1], dot, scope)
            out.append("<no value>" if value is MISSING or value is None else str(value))
        elif node[0] == "set":
            value = _call(node[2], dot, scope)
            scope.frames[-1][node[1]] = value if node[3] else scope.assign(node[1], value)
            if not node[3]:
                del scope.frames[-1][node[1]]
        elif node[0] == "if":
            branch = next((body for cond, body in node[1] if _truth(_call(cond, dot, scope))), node[2] or [])
            scope.frames.append({})
            _run(branch, dot, scope, out)
            scope.frames.pop()
        elif node[0] == "range":
            *names, tokens, body = node[1:]
            for i, item in enumerate(_call(tokens, dot, scope) or []):
                scope.frames.append(dict(zip(names, (i, item))) if len(names) == 2 else {names[0]: item})
                _run(body, item, scope, out)
                scope.frames.pop()


def render(source: str, data: dict[str, Any]) -> str:
    """Execute a Go template over `data` (maps; Ollama passes map[string]any with missingkey=zero)."""
    out: list[str] = []
    _run(_parse(source), data, _Scope(data), out)
    return "".join(out)


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(command, argument) pairs as Ollama's parser.ParseFile reads them (its state machine, ported)."""
    commands, name, buffer, state = [], "", "", "nil"

    def unquote(s: str) -> tuple[str, bool]:
        if s.startswith('"""'):
            return (s[3:-3], True) if len(s) >= 6 and s.endswith('"""') else ("", False)
        if s.startswith('"'):
            return (s[1:-1], True) if len(s) >= 2 and s.endswith('"') else ("", False)
        return s, True

    for char in text + "\n":
        if state == "comment":
            state = "nil" if char in "\r\n" else state
            continue
        if state == "nil":
            if char == "#":
                state = "comment"
            elif char not in " \t\r\n":
                state, buffer = "name", char
            continue
        if state == "name":
            if char.isalpha():
                buffer += char
                continue
            name, buffer, state = buffer.lower(), "", "param" if buffer.lower() == "parameter" else "value"
            continue
        if state == "param":
            if char.isalnum() or char == "_":
                buffer += char
                continue
            name, buffer, state = buffer, "", "value"
            continue
        if char in " \t\r\n":  # a value ends at the first newline where it unquotes
            value, ok = unquote(buffer.strip())
            if ok and char in "\r\n":
                commands.append((name, value))
                buffer, state = "", "nil"
            else:
                buffer += char
        elif char.isprintable():  # Go's strconv.IsPrint: other control characters are dropped
            buffer += char
    return commands
