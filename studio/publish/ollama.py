"""The Ollama Modelfile of a GGUF export: a Go TEMPLATE that rebuilds the run's prompt, its stop strings, defaults.

Ollama hands a template two kinds of input (its `template.Execute`), and the TEMPLATE covers both:
- a chat (`ollama run`, /api/chat, /api/generate without suffix): `.System` and `.Messages`. The last message is
  the instruction; earlier ones are the history, rendered as the studio renders it (a "User: ..." transcript for
  plain templates, real turns for chat templates); system messages arrive as `.System`.
- /api/generate with `prompt` and `suffix`: Ollama's only second text field. Here `.Prompt` is the instruction
  and `.Suffix` the input (Alpaca's `### Input:`), so rows with an input are reproduced too.
The studio's template is rendered with placeholder values and the placeholders become Go actions, so the Modelfile
follows templates.py instead of restating it; literal text that Go or the Modelfile would read as syntax is
emitted as a quoted Go string. No `{{-` trimming is used: every character of the prompt matters.
"""
from __future__ import annotations

import json
import re
from typing import Any

from studio.data.templates import PromptTemplate, TokenizerTemplate
from studio.errors import ExportError
from studio.examples import Example
from studio.settings import GenerationSettings

_SLOT = "\x00{}\x00"
INSTRUCTION, INPUT, SYSTEM, ROLE, CONTENT = (_SLOT.format(n) for n in ("I", "N", "S", "R", "C"))
# The last message is the instruction; `len (slice $.Messages $i)` counts the messages from $i to the end.
IS_LAST = "(eq (len (slice $.Messages $i)) 1)"
LAST_MESSAGE = f"{{{{ range $i, $m := .Messages }}}}{{{{ if {IS_LAST} }}}}{{{{ $m.Content }}}}{{{{ end }}}}{{{{ end }}}}"
# instruction_with_history: one "Role: content" line per earlier turn, a blank line, then the instruction.
TRANSCRIPT = (
    "{{ $h := false }}{{ range $i, $m := .Messages }}"
    f"{{{{ if and (ne $m.Role \"system\") (not {IS_LAST}) }}}}"
    '{{ if eq $m.Role "user" }}User{{ else if eq $m.Role "assistant" }}Assistant{{ else }}{{ $m.Role }}{{ end }}'
    ": {{ $m.Content }}\n{{ $h = true }}{{ end }}{{ end }}{{ if $h }}\n{{ end }}"
)
SLOTS = {INSTRUCTION: "{{ .Prompt }}", INPUT: "{{ .Suffix }}", SYSTEM: "{{ .System }}", ROLE: "{{ $m.Role }}",
         CONTENT: "{{ $m.Content }}"}


def go_text(text: str, slots: dict[str, str] | None = None) -> str:
    """Template source printing `text` exactly, with each placeholder in `slots` replaced by its Go action."""
    slots = SLOTS if slots is None else slots
    out = []
    for part in re.split("(\x00[A-Z]\x00)", text):
        if part in slots:
            out.append(slots[part])
        elif "{{" in part or '"""' in part:  # Go or the Modelfile would read these as syntax
            out.append("{{ " + json.dumps(part, ensure_ascii=False) + " }}")
        else:
            out.append(part)
    return "".join(out)


def _plain_template(template: PromptTemplate) -> str:
    """Single-turn templates: the prompt rendered with placeholders, with and without input and system."""
    def rendered(system: str, input: str = "") -> str:
        variant = type(template)(**_fields(template, system=system))
        return variant.prompt(Example(instruction=INSTRUCTION, input=input, output=""))

    # Ollama passes no system text along with a suffix, so the input variant has none.
    with_input, with_system, without = rendered("", INPUT), rendered(SYSTEM), rendered("")
    chat = {INSTRUCTION: TRANSCRIPT + LAST_MESSAGE}
    return ("{{ if .Suffix }}" + go_text(with_input) + "{{ else }}{{ if .System }}" + go_text(with_system, SLOTS | chat)
            + "{{ else }}" + go_text(without, SLOTS | chat) + "{{ end }}{{ end }}")


def _fields(template: PromptTemplate, **changes: Any) -> dict[str, Any]:
    """A template's constructor arguments (its custom format, if any) with some replaced."""
    values = {"system": template.system, **({"fmt": template.fmt} if hasattr(template, "fmt") else {})}
    return values | changes


def _turn_template(template: Any) -> str:
    """Chat templates: a system turn, one turn per message, then the open assistant turn."""
    with_input = type(template)().prompt(Example(instruction=INSTRUCTION, input=INPUT, output=""))
    turn = go_text(template.turn(ROLE, CONTENT))
    system = go_text(template.turn("system", SYSTEM))
    messages = f'{{{{ range $i, $m := .Messages }}}}{{{{ if ne $m.Role "system" }}}}{turn}{{{{ end }}}}{{{{ end }}}}'
    opener = go_text(template.opener.format(role="assistant"))
    return (f"{{{{ if .Suffix }}}}{go_text(with_input)}{{{{ else }}}}{{{{ if .System }}}}{system}{{{{ end }}}}"
            f"{messages}{opener}{{{{ end }}}}")


def go_template(template: PromptTemplate) -> str | None:
    """The Go template reproducing `template` for Ollama, or None for the model's own (Jinja) chat template."""
    if isinstance(template, TokenizerTemplate):
        return None
    if hasattr(template, "turn"):  # the chat formats (Phi-3, ChatML): one turn per message
        return _turn_template(template)
    return _plain_template(template)


def _quoted(value: str) -> str:
    """A Modelfile argument: "..." when plain, \"\"\"...\"\"\" when it holds quotes or newlines."""
    if '"""' in value:
        raise ExportError('A stop string or system prompt contains """, which a Modelfile cannot hold.')
    return f'"""{value}"""' if '"' in value or "\n" in value or value != value.strip() else f'"{value}"'


def parameters(gen: GenerationSettings, stops: list[str]) -> list[tuple[str, Any]]:
    """Ollama PARAMETERs matching the run's generation settings (greedy is temperature 0)."""
    params: list[tuple[str, Any]] = [("stop", _quoted(stop)) for stop in stops]
    params.append(("temperature", gen.temperature if gen.do_sample else 0))
    if gen.do_sample:
        params += [("top_p", gen.top_p), ("seed", gen.seed)]
    params.append(("num_predict", gen.max_new_tokens))
    # Always written: Ollama's own default is 1.1 over the last 64 tokens, which would change every greedy answer.
    params.append(("repeat_penalty", f"{gen.repetition_penalty:g}"))
    if gen.repetition_penalty != 1.0:
        params.append(("repeat_last_n", -1))  # the whole context (-1 = num_ctx), as transformers penalises
    return params


def modelfile(gguf_name: str, template: PromptTemplate, gen: GenerationSettings, eos_token: str | None,
              system: str = "") -> str:
    """The Modelfile text: FROM the GGUF next to it, TEMPLATE, stop and default PARAMETERs, SYSTEM when set."""
    stops = list(dict.fromkeys([*template.stop_strings, *([eos_token] if eos_token else [])]))
    lines = ["# Ollama: ollama create my-model -f Modelfile && ollama run my-model",
             '# An input (the "### Input:" part) goes in /api/generate\'s suffix: {"prompt": instruction, '
             '"suffix": input}.', f"FROM ./{gguf_name}", ""]
    body = go_template(template)
    if body is None:
        lines += ["# The run used the model's own chat template; the GGUF keeps it as tokenizer.chat_template.", ""]
    else:
        lines += [f'TEMPLATE """{body}"""', ""]
    lines += [f"PARAMETER {name} {value}" for name, value in parameters(gen, stops)]
    if system:
        lines += ["", f"SYSTEM {_quoted(system)}"]
    return "\n".join(lines) + "\n"
