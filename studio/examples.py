"""The one record every dataset shape is normalised into."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    """One instruction-tuning example; chats keep their earlier turns in `history`."""

    instruction: str
    output: str
    input: str = ""
    system: str = ""
    # Earlier turns of a multi-turn chat as (role, content), roles "user"/"assistant".
    history: tuple[tuple[str, str], ...] = field(default=())

    @property
    def user_text(self) -> str:
        """The final user turn: instruction plus input when there is one."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction

    def messages(self) -> list[dict[str, str]]:
        """The example as chat messages, ending with the assistant's answer."""
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs += [{"role": r, "content": c} for r, c in self.history]
        msgs.append({"role": "user", "content": self.user_text})
        msgs.append({"role": "assistant", "content": self.output})
        return msgs

    def to_row(self) -> dict[str, object]:
        """A JSON-friendly dict (used for saved splits and comparison files)."""
        row: dict[str, object] = {"instruction": self.instruction, "input": self.input, "output": self.output}
        if self.system:
            row["system"] = self.system
        if self.history:
            row["history"] = [list(t) for t in self.history]
        return row

    @classmethod
    def from_row(cls, row: dict) -> "Example":
        """Inverse of `to_row`."""
        return cls(
            instruction=str(row.get("instruction", "")),
            output=str(row.get("output", "")),
            input=str(row.get("input", "") or ""),
            system=str(row.get("system", "") or ""),
            history=tuple((str(r), str(c)) for r, c in row.get("history", []) or []),
        )
