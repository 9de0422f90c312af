"""The one record every dataset shape is normalised into."""
from __future__ import annotations

from dataclasses import dataclass, field

# Roles a chat turn may have once loaded: aliases (human, gpt, prompter, ...) are mapped onto these.
TURN_ROLES = ("user", "assistant", "tool")


@dataclass(frozen=True, slots=True)
class Example:
    """One instruction-tuning example; chats keep their earlier turns in `history`.

    A chat is `system`, then `history`, then the final prompt turn (`instruction` + `input`, spoken by
    `prompt_role`), then the final answer `output`. Chat templates train every assistant turn of `history` as
    well as `output`; single-turn templates flatten `history` into the prompt and train `output` only.
    """

    instruction: str
    output: str
    input: str = ""
    system: str = ""
    # Earlier turns of a multi-turn chat as (role, content), roles "user"/"assistant"/"tool".
    history: tuple[tuple[str, str], ...] = field(default=())
    # Who speaks the final prompt turn: "user", or "tool" when the answer follows a tool result.
    prompt_role: str = "user"

    @property
    def user_text(self) -> str:
        """The final user turn: instruction plus input when there is one."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction

    @property
    def n_answers(self) -> int:
        """Assistant turns a chat template trains: the earlier ones in `history` plus the final answer."""
        return 1 + sum(role == "assistant" for role, _ in self.history)

    def messages(self) -> list[dict[str, str]]:
        """The example as chat messages, ending with the assistant's answer."""
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs += [{"role": r, "content": c} for r, c in self.history]
        msgs.append({"role": self.prompt_role, "content": self.user_text})
        msgs.append({"role": "assistant", "content": self.output})
        return msgs

    def without_oldest(self, n_answers: int) -> "Example":
        """The chat without its first `n_answers` earlier exchanges (it then starts at the next user turn)."""
        if n_answers <= 0:
            return self
        seen, cut = 0, len(self.history)
        for i, (role, _) in enumerate(self.history):
            if role == "assistant":
                seen += 1
            elif role == "user" and seen >= n_answers:
                cut = i
                break
        return Example(self.instruction, self.output, self.input, self.system, self.history[cut:], self.prompt_role)

    def to_row(self) -> dict[str, object]:
        """A JSON-friendly dict (used for saved splits and comparison files)."""
        row: dict[str, object] = {"instruction": self.instruction, "input": self.input, "output": self.output}
        if self.system:
            row["system"] = self.system
        if self.history:
            row["history"] = [list(t) for t in self.history]
        if self.prompt_role != "user":
            row["prompt_role"] = self.prompt_role
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
            prompt_role=str(row.get("prompt_role", "") or "user"),
        )
