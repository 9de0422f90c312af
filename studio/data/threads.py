"""OASST-style message rows -> conversations: grouped by conversation id, threaded by parent ids.

A conversation tree branches wherever several replies answer one message; the thread kept follows the best-ranked
reply at each branch (rank 0 first, unranked last, then file order), the usual way to train on such trees. Without
parent ids the messages of a conversation are taken in file order.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from studio.data.rows import get


@dataclass(frozen=True)
class Message:
    """One message row reduced to what threading needs."""

    order: int
    row: int
    id: object
    parent: object
    rank: float
    turn: dict


class ThreadCollector:
    """Collects message rows, then yields one (first row number, turns) per conversation."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self.groups: dict[object, list[Message]] = {}
        self.n_messages = 0

    def add(self, number: int, row: dict) -> None:
        """File one message row under its conversation."""
        m = self.mapping
        group = _hashable(get(row, m["group"]))
        rank = get(row, m["rank"]) if "rank" in m else None
        turn = {"role": get(row, m["role"]), "content": get(row, m["text"])}
        message = Message(self.n_messages, number, _hashable(get(row, m["id"])) if "id" in m else None,
                          _hashable(get(row, m["parent"])) if "parent" in m else None,
                          float(rank) if isinstance(rank, (int, float)) and not isinstance(rank, bool) else float("inf"),
                          turn)
        self.groups.setdefault(group, []).append(message)
        self.n_messages += 1

    def conversations(self) -> Iterator[tuple[int, list[dict]]]:
        """(row number of the conversation's first message, its turns in order) for each conversation."""
        threaded = "parent" in self.mapping and "id" in self.mapping
        for messages in self.groups.values():
            thread = _best_thread(messages) if threaded else messages
            yield messages[0].row, [m.turn for m in thread]


def _best_thread(messages: list[Message]) -> list[Message]:
    """From the root, the best-ranked reply at every branch."""
    ids = {m.id for m in messages}
    children: dict[object, list[Message]] = {}
    for m in messages:
        children.setdefault(m.parent if m.parent in ids else None, []).append(m)
    thread, parent, seen = [], None, set()
    while children.get(parent) and parent not in seen:
        seen.add(parent)
        best = min(children[parent], key=lambda m: (m.rank, m.order))
        thread.append(best)
        parent = best.id
    return thread


def _hashable(value: object) -> object:
    """Ids as dictionary keys (a list or dict id becomes its text)."""
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
