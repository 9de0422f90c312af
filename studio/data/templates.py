"""Prompt templates: one small class each plus a registry, turning an `Example` into prompt and completion text.

The prompt is everything the model sees before its answer (masked in training, fed alone at generation time);
the completion is the answer it is trained on. EOS is never part of the text: `studio.data.formatting` appends
`eos_token_id` when it tokenises, so every template stops the same way.

Chat history on single-turn templates (alpaca, instruction_output, question_answer, custom): earlier turns are
kept, not dropped, as a plain transcript ("User: ...\\nAssistant: ...", one line per turn) followed by a blank
line before the final instruction, and only the last answer is trained. Chat templates (chat, phi3, chatml,
tokenizer) render them as real turns and train every assistant turn: `Rendered.prompt_segments` marks the earlier
answers inside the prompt as trained pieces, while `prompt` stays the whole text before the last answer (what
generation is fed, so the held-out comparison answers a chat's last turn with the earlier turns as context).

System text: a row's own `system` wins over the template's default (`DataSettings.system_prompt`). Chat templates
put it in a system turn; plain templates put it as a first paragraph; the custom template only where it says
`{system}`.
"""
from __future__ import annotations

import string
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from jinja2 import TemplateError as JinjaTemplateError

from studio.errors import TemplateError
from studio.examples import Example
from studio.settings import DataSettings

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)
CUSTOM_FIELDS = ("instruction", "input", "output", "system")
# Where a `### ...` template's answer ends: the start of a new section ("### Input:", "### Instruction:", ...).
SECTION_MARKER = "\n### "
PICK_ANOTHER = "pick ChatML, Phi-3 or another template instead."


@dataclass(frozen=True)
class Rendered:
    """One example as text: the prompt the model is given and the completion it learns to write.

    For a multi-turn chat under a chat template the prompt holds earlier assistant turns that are trained too:
    `prompt_segments` then splits the prompt into (text, trained) pieces that join back to it.
    """

    prompt: str
    completion: str
    prompt_segments: tuple[tuple[str, bool], ...] = ()

    def segments(self) -> list[tuple[str, bool]]:
        """Every piece in order as (text, trained): the prompt's pieces, then the completion (trained)."""
        return [*(self.prompt_segments or ((self.prompt, False),)), (self.completion, True)]


@dataclass(frozen=True)
class PromptTemplate(ABC):
    """Base class: `render` splits an example into prompt and completion; `system` is the default system text."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # End-of-answer markers generation stops at, the same for base and tuned answers: the template's own next
    # section or turn markers. EOS always stops as well. A marker that is one special token is matched on token ids.
    stop_strings: ClassVar[tuple[str, ...]] = ()
    # Chat templates train every assistant turn of a chat; single-turn ones flatten earlier turns into the prompt.
    multi_turn: ClassVar[bool] = False

    system: str = ""

    @abstractmethod
    def render(self, example: Example) -> Rendered:
        """Split the example into prompt and completion text."""

    def prompt(self, example: Example) -> str:
        """The prompt alone, as fed to generation at evaluation time."""
        return self.render(example).prompt

    def system_for(self, example: Example) -> str:
        """The row's own system text, else this template's default."""
        return example.system or self.system


def instruction_with_history(example: Example) -> str:
    """The final instruction, preceded by the earlier chat turns as "User: ..." / "Assistant: ..." lines."""
    transcript = "\n".join(f"{role.capitalize()}: {content}" for role, content in example.history)
    return f"{transcript}\n\n{example.instruction}" if transcript else example.instruction


def question_with_history(example: Example) -> str:
    """`instruction_with_history` plus the input after a blank line, for formats without an input section."""
    instruction = instruction_with_history(example)
    return f"{instruction}\n\n{example.input}" if example.input else instruction


class _PlainTemplate(PromptTemplate):
    """Shared by single-turn templates: a system text becomes a first paragraph, the output is the completion."""

    def render(self, example: Example) -> Rendered:
        """Split the example into prompt and completion text."""
        system, body = self.system_for(example), self.body(example)
        return Rendered(prompt=f"{system}\n\n{body}" if system else body, completion=example.output)

    @abstractmethod
    def body(self, example: Example) -> str:
        """The prompt without the system paragraph."""


@dataclass(frozen=True)
class AlpacaTemplate(_PlainTemplate):
    """Stanford Alpaca: picks the with-input or without-input wording per row."""

    name = "alpaca"
    title = "Alpaca"
    description = "The Stanford Alpaca prompt, with an ### Input: section only when the row has one."
    stop_strings = (SECTION_MARKER,)

    def body(self, example: Example) -> str:
        """The Alpaca prompt up to and including `### Response:`."""
        instruction = instruction_with_history(example)
        if example.input:
            return ALPACA_WITH_INPUT.format(instruction=instruction, input=example.input)
        return ALPACA_NO_INPUT.format(instruction=instruction)


@dataclass(frozen=True)
class InstructionOutputTemplate(_PlainTemplate):
    """The CodeAlpaca tutorial's short format; the studio's default because short prompts train fast on CPU."""

    name = "instruction_output"
    title = "Instruction / Output"
    description = "### Instruction: ... ### Output: (the CodeAlpaca tutorial's format; short and fast)."
    stop_strings = (SECTION_MARKER,)

    def body(self, example: Example) -> str:
        """The prompt up to and including `### Output:`."""
        text = f"### Instruction:\n{instruction_with_history(example)}\n\n"
        if example.input:
            text += f"### Input:\n{example.input}\n\n"
        return text + "### Output:\n"


@dataclass(frozen=True)
class QuestionAnswerTemplate(_PlainTemplate):
    """The Lamini docs tutorial's Q&A format; an input is appended to the question after a blank line."""

    name = "question_answer"
    title = "Question / Answer"
    description = "### Question: ... ### Answer: (the Lamini docs Q&A tutorial's format)."
    stop_strings = (SECTION_MARKER,)

    def body(self, example: Example) -> str:
        """The prompt up to and including `### Answer:`."""
        return f"### Question:\n{question_with_history(example)}\n\n### Answer:\n"


class _TurnTemplate(PromptTemplate):
    """Shared by hand-written chat formats: each turn is `opener` (with the role) + content + `end` + newline."""

    multi_turn = True
    opener: ClassVar[str] = ""  # a format string with {role}
    end: ClassVar[str] = ""

    def turn(self, role: str, content: str) -> str:
        """One finished turn of the conversation."""
        return f"{self.opener.format(role=role)}{content}{self.end}\n"

    def render(self, example: Example) -> Rendered:
        """Split the example into prompt and completion text; earlier answers (content + end) are trained too."""
        system = self.system_for(example)
        pieces: list[tuple[str, bool]] = []
        masked = self.turn("system", system) if system else ""
        for role, content in example.history:
            if role == "assistant":
                pieces += [(masked + self.opener.format(role=role), False), (content + self.end, True)]
                masked = "\n"
            else:
                masked += self.turn(role, content)
        # The answer turn is left open in the prompt, exactly as generation will continue it.
        pieces.append((masked + self.turn(example.prompt_role, example.user_text)
                       + self.opener.format(role="assistant"), False))
        prompt = "".join(text for text, _ in pieces)
        return Rendered(prompt=prompt, completion=example.output + self.end,
                        prompt_segments=tuple(pieces) if len(pieces) > 1 else ())


@dataclass(frozen=True)
class Phi3Template(_TurnTemplate):
    """Microsoft Phi-3's chat format (<|user|> ... <|end|>)."""

    name = "phi3"
    title = "Phi-3 chat"
    description = "<|system|> / <|user|> / <|assistant|> turns closed by <|end|>, history included."
    stop_strings = ("<|end|>", "<|user|>", "<|assistant|>", "<|system|>")
    opener = "<|{role}|>\n"
    end = "<|end|>"


@dataclass(frozen=True)
class ChatMLTemplate(_TurnTemplate):
    """OpenAI's ChatML as used by Qwen and many chat models (<|im_start|>role ... <|im_end|>)."""

    name = "chatml"
    title = "ChatML"
    description = "<|im_start|>role ... <|im_end|> turns (Qwen and many chat models), history included."
    stop_strings = ("<|im_end|>", "<|im_start|>")
    opener = "<|im_start|>{role}\n"
    end = "<|im_end|>"


@dataclass(frozen=True)
class CustomTemplate(PromptTemplate):
    """A user format string; validated when built so a bad one fails before any training starts."""

    name = "custom"
    title = "Custom format string"
    description = "Your own format with {instruction} {input} {output} {system}; {output} comes last."

    fmt: str = ""
    # Parsed (literal, field) pieces; rendering joins them instead of str.format so braces in data are harmless.
    pieces: tuple[tuple[str, str | None], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pieces", parse_custom(self.fmt))
        object.__setattr__(self, "stop_strings", custom_stop_strings(self.pieces))

    def render(self, example: Example) -> Rendered:
        """Split the example into prompt and completion text."""
        # A format without {input} would silently lose the input: fold it into the instruction instead.
        has_input = any(n == "input" for _, n in self.pieces)
        instruction = instruction_with_history(example) if has_input else question_with_history(example)
        values = {"instruction": instruction, "input": example.input, "system": self.system_for(example)}
        prompt, completion, after = [], [], False
        for literal, name in self.pieces:
            (completion if after else prompt).append(literal)
            if name == "output":
                completion.append(example.output)
                after = True
            elif name:
                prompt.append(values[name])
        return Rendered(prompt="".join(prompt), completion="".join(completion))


def parse_custom(fmt: str) -> tuple[tuple[str, str | None], ...]:
    """Parse and validate a custom format string into (literal, field) pieces, raising TemplateError."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        raise TemplateError("The custom template has an unbalanced { or }; write {{ or }} for a literal one.") from None
    allowed = ", ".join("{" + f + "}" for f in CUSTOM_FIELDS)
    for _, name, spec, conversion in parsed:
        if name is not None and (name == "" or name.isdigit()):
            raise TemplateError(f"The custom template has a positional field {{{name}}}; use one of {allowed}.")
        if name is not None and name not in CUSTOM_FIELDS:
            raise TemplateError(f"The custom template has an unknown field {{{name}}}; allowed fields are {allowed}.")
        if spec or conversion:
            raise TemplateError(f"The custom template field {{{name}}} must be plain, without ! or : after its name.")
    names = [name for _, name, _, _ in parsed if name]
    if names.count("output") != 1:
        raise TemplateError("The custom template must contain {output} exactly once, where the answer goes.")
    if names[-1] != "output":
        raise TemplateError("The custom template must end with {output}: no field may come after it.")
    return tuple((literal, name) for literal, name, _, _ in parsed)


def custom_stop_strings(pieces: tuple[tuple[str, str | None], ...]) -> tuple[str, ...]:
    """A custom format's end markers: the text it writes after {output}, and a new line opening any of its lines."""
    stops, tail, after = [], "", False
    for i, (literal, name) in enumerate(pieces):
        if after:
            tail += literal  # trained right after every answer, so the model learns to write it
        else:
            # "Q: {instruction}\nA: {output}" -> "\nQ:" and "\nA:": text that opens a line of the format starts the
            # next example; the first segment opens a line only at the very start of the format.
            lines = literal.split("\n")
            stops += ["\n" + line.strip() for line in (lines if i == 0 else lines[1:])]
        after = after or name == "output"
    return tuple(dict.fromkeys(s for s in [tail.strip(), *stops] if s.strip()))


@dataclass(frozen=True, eq=False)
class TokenizerTemplate(PromptTemplate):
    """The model's own chat template (`tokenizer.apply_chat_template`), for instruction-tuned base models."""

    name = "tokenizer"
    title = "Model's own chat template"
    description = "The chat template that ships with the model's tokenizer (instruct models only)."
    multi_turn = True

    tokenizer: Any = None

    def __post_init__(self) -> None:
        if self.tokenizer is None:
            raise TemplateError("The tokenizer template needs the model's tokenizer; load a model first.")
        if not getattr(self.tokenizer, "chat_template", None):
            raise TemplateError(f"This model's tokenizer has no chat template; {PICK_ANOTHER}")
        object.__setattr__(self, "stop_strings", self._end_marker())

    def render(self, example: Example) -> Rendered:
        """Split the example into prompt and completion text; each earlier assistant turn is a trained piece."""
        messages = example.messages()
        if not example.system and self.system:
            messages.insert(0, {"role": "system", "content": self.system})
        pieces, done = [], ""
        for k in [i for i, m in enumerate(messages[:-1]) if m["role"] == "assistant"]:
            before, answer = self._answer_turn(messages[:k + 1])
            if not before.startswith(done):
                raise TemplateError(f"This model's chat template renders earlier turns differently as the chat grows, "
                                    f"so each assistant turn cannot be masked; {PICK_ANOTHER}")
            trained = answer.rstrip()  # the newline after a turn's end marker belongs to the next turn
            pieces += [(before[len(done):], False), (trained, True)]
            done = before + trained
        prompt, completion = self._answer_turn(messages)
        if not prompt.startswith(done):
            raise TemplateError(f"This model's chat template renders earlier turns differently as the chat grows, "
                                f"so each assistant turn cannot be masked; {PICK_ANOTHER}")
        # formatting appends eos_token_id itself; a template that writes the EOS text would otherwise get two.
        eos = self.tokenizer.eos_token
        if eos and completion.rstrip().endswith(eos):
            completion = completion.rstrip().removesuffix(eos)
        pieces.append((prompt[len(done):], False))
        return Rendered(prompt=prompt, completion=completion, prompt_segments=tuple(pieces) if len(pieces) > 1 else ())

    def _answer_turn(self, messages: list[dict[str, str]]) -> tuple[str, str]:
        """(the text before the last message's answer, the answer turn's text) for messages ending in an answer."""
        prompt, full = self._apply(messages[:-1], generation=True), self._apply(messages, generation=False)
        if not full.startswith(prompt):
            raise TemplateError(
                f"This model's chat template writes the answer turn differently from its generation prompt, "
                f"so the prompt cannot be masked; {PICK_ANOTHER}"
            )
        return prompt, full[len(prompt):]

    def _apply(self, messages: list[dict[str, str]], generation: bool) -> str:
        try:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False)
        except (JinjaTemplateError, ValueError, TypeError, KeyError) as exc:
            raise TemplateError(f"This model's chat template rejected the conversation ({exc}).") from None

    def _end_marker(self) -> tuple[str, ...]:
        """The text the template writes after an answer (e.g. <end_of_turn>), so generation can stop there."""
        # Rendering a probe here also surfaces a template that cannot split prompt from answer up front.
        probe = "\x00answer\x00"
        completion = self.render(Example(instruction="question", output=probe)).completion
        marker = completion.partition(probe)[2].strip()
        return (marker,) if marker and marker != self.tokenizer.eos_token else ()


TEMPLATES: dict[str, PromptTemplate] = {
    t.name: t for t in (InstructionOutputTemplate(), AlpacaTemplate(), QuestionAnswerTemplate(), Phi3Template(),
                        ChatMLTemplate())
}
DEFAULT_TEMPLATE = InstructionOutputTemplate.name
# "chat": the model's own chat template when its tokenizer has one, else ChatML (the default for chat data).
CHAT_TEMPLATE = "chat"
CHAT_TITLE = "Chat (the model's chat template, else ChatML)"


def get_template(name: str, custom: str = "", tokenizer: Any = None, system: str = "") -> PromptTemplate:
    """The template called `name`, validated up front; `system` is the default system text for rows without one."""
    if name == CHAT_TEMPLATE:
        has_own = tokenizer is not None and getattr(tokenizer, "chat_template", None)
        return TokenizerTemplate(system=system, tokenizer=tokenizer) if has_own else ChatMLTemplate(system=system)
    if name == CustomTemplate.name:
        return CustomTemplate(system=system, fmt=custom)
    if name == TokenizerTemplate.name:
        return TokenizerTemplate(system=system, tokenizer=tokenizer)
    if name not in TEMPLATES:
        known = ", ".join([CHAT_TEMPLATE, *TEMPLATES, CustomTemplate.name, TokenizerTemplate.name])
        raise TemplateError(f"Unknown template {name!r}; choose one of {known}.")
    return type(TEMPLATES[name])(system=system)


def template_for(data: DataSettings, tokenizer: Any = None) -> PromptTemplate:
    """The template a run's data settings name, with its custom format and default system prompt."""
    return get_template(data.template, custom=data.custom_template, tokenizer=tokenizer, system=data.system_prompt)


def template_choices() -> list[tuple[str, str]]:
    """(title, name) pairs for a dropdown: the fixed templates, the automatic chat one, custom, the tokenizer's own."""
    classes = [type(t) for t in TEMPLATES.values()]
    return [(c.title, c.name) for c in classes] + [(CHAT_TITLE, CHAT_TEMPLATE)] + [
        (c.title, c.name) for c in (CustomTemplate, TokenizerTemplate)]


def trains_every_turn(name: str) -> bool:
    """Whether the template called `name` trains every assistant turn of a chat (a chat template)."""
    if name in (CHAT_TEMPLATE, TokenizerTemplate.name):
        return True
    return name in TEMPLATES and type(TEMPLATES[name]).multi_turn


def choose_template(current: str, recommended: str, chosen: bool = False) -> str:
    """The template to train with once data has loaded: the data's recommended one unless the user chose one.

    The one rule for the Data tab, the one-click demo and the command line: a sample's own template, or "chat" for
    chat-shaped files, replaces `current`; `chosen` (a --template flag, a --set or a preset that set it) keeps it.
    """
    return current if chosen or not recommended else recommended
