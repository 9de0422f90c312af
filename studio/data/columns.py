"""Which column plays which role, by its name: the documented table of common names, and the fix each surface shows
when the columns must be mapped by hand.

A flat file whose columns match no known shape (`shapes.FLAT_SHAPES`) is read by this table when exactly one
column is named like the instruction and exactly one like the output (case, spaces and hyphens do not matter);
otherwise the library refuses with one neutral sentence naming the candidates, and the command line and the Data
tab each add the fix in their own words (`fix_for_cli`, `fix_for_ui`).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# role -> the column names that mean it, most telling first. Only exact matches (after `normalise`) are used.
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "instruction": ("instruction", "instructions", "question", "query", "prompt", "input_text", "problem",
                    "user_input", "user_prompt", "request", "task", "source_text"),
    "output": ("output", "answer", "expected_answer", "response", "completion", "target", "solution",
               "output_text", "reference", "expected_output", "reference_answer", "ground_truth", "gold_answer",
               "canonical_solution", "target_text", "reply", "sql"),
    "input": ("input", "context", "passage"),
    "system": ("system", "system_prompt"),
}
ROLE_HELP = {"instruction": "the prompt or question", "input": "optional extra context for the prompt",
             "output": "the answer the model learns to give", "system": "an optional system prompt"}
CHAT_COLUMNS = ("messages", "conversations")  # a mapping does not apply to chat turns


def normalise(name: object) -> str:
    """'Expected Answer' -> 'expected_answer'."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


@dataclass(frozen=True)
class RoleGuess:
    """The columns named exactly like each role, and for the output those that only contain an answer-like word."""

    exact: dict[str, list[str]]
    near_output: list[str]

    def only(self, role: str) -> str | None:
        """The one column named like `role`, or None when there is none or several."""
        found = self.exact.get(role, [])
        return found[0] if len(found) == 1 else None


def guess_roles(columns: list[str]) -> RoleGuess:
    """Match the columns against the table of common names."""
    exact = {role: [c for c in columns if normalise(c) in names] for role, names in ROLE_NAMES.items()}
    answers = set(ROLE_NAMES["output"])
    near = [c for c in columns if c not in exact["output"] and answers & set(normalise(c).split("_"))]
    return RoleGuess(exact, near)


def roles_help() -> str:
    """'instruction (the prompt or question), input (...), output (...), system (...)' for help texts."""
    return ", ".join(f"{role} ({words})" for role, words in ROLE_HELP.items())


def _suggested(columns: list[str]) -> tuple[str | None, str | None]:
    """The likeliest (instruction, output) columns for a fix line: named ones first, else the first free ones; the
    output is None when an instruction is named but nothing looks like an answer (the refusal says so)."""
    guess = guess_roles(columns)
    instruction = next(iter(guess.exact["instruction"] or guess.exact["input"]), None)
    output = next(iter(guess.exact["output"] or guess.near_output), None)
    free = [c for c in columns if c not in (instruction, output)]
    if instruction is None and free:  # nothing named like a role: suggest the first columns, as the refusal asks
        instruction = free.pop(0)
        output = output or next(iter(free), None)
    return instruction, output


def map_flags(mapping: dict[str, str]) -> str:
    """A flat shape's role -> column mapping as the --map flags that choose it ('' for chat shapes)."""
    if not all(role in ROLE_NAMES for role in mapping):
        return ""
    return " ".join(f"--map {shlex.quote(f'{role}={column}')}" for role, column in mapping.items())


def fix_for_cli(columns: list[str]) -> str:
    """The command-line fix for a refusal a mapping can fix: the --map flags with the file's real column names."""
    if not columns or any(normalise(c) in CHAT_COLUMNS for c in columns):
        return ""
    instruction, output = _suggested(columns)
    flag = lambda role, column: f"--map {shlex.quote(f'{role}={column}')}"  # noqa: E731 - local formatting
    if output is None:
        others = [c for c in columns if c != instruction]
        if not others:
            return "the file has a single column, so there is no answer to train on: add an output column."
        return (f"if one of the columns does hold the answers, name it: {flag('instruction', instruction)} "
                f"--map output=COLUMN (COLUMN one of {', '.join(others[:8])}).")
    return (f"say which column is which, e.g. {flag('instruction', instruction)} {flag('output', output)} "
            f"(roles: {', '.join(ROLE_HELP)}; the file's columns: {', '.join(columns[:12])}).")


def fix_for_ui(columns: list[str]) -> str:
    """The Data tab's fix for a refusal a mapping can fix: the Column mapping accordion, with suggested columns."""
    if not columns or any(normalise(c) in CHAT_COLUMNS for c in columns):
        return ""
    instruction, output = _suggested(columns)
    if output is None:
        return ("If one of the columns does hold the answers, choose it as the Output column under Column mapping "
                "below, then press Apply mapping.")
    return (f"Choose the columns under Column mapping below (for example Instruction = '{instruction}' and "
            f"Output = '{output}'), then press Apply mapping.")
