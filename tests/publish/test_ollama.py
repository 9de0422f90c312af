"""The Ollama Modelfile: parsed as Ollama parses it, its TEMPLATE executed as Go executes it for the two ways Ollama
fills a template (a chat, or /api/generate with a suffix), must give exactly the studio's prompt for every template."""
from __future__ import annotations

import pytest

from studio.data.templates import TEMPLATES, CustomTemplate, get_template
from studio.errors import ExportError
from studio.examples import Example
from studio.publish.ollama import go_template, go_text, modelfile
from studio.settings import GenerationSettings
from tests.publish.gotemplate import parse_modelfile, render

ODD_CUSTOM = 'Q {{{{x}}}} """q""" {system}|{instruction} / {input}\nA: {output}'
TEMPLATE_CASES = [*[(name, "") for name in TEMPLATES], ("custom", "### Ask:\n{instruction}\n### Reply:\n{output}"),
                  ("custom", ODD_CUSTOM)]
HISTORY = (("user", "What is 2 + 2?"), ("assistant", "4"))


def ollama_chat(template_source: str, messages: list[dict], modelfile_system: str = "") -> str:
    """What Ollama sends the model for a chat: SYSTEM added when the request has none, then `collate`."""
    if modelfile_system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": modelfile_system}, *messages]
    collated: list[dict] = []
    for m in messages:  # consecutive messages of one role are merged, system messages are also collected
        if collated and collated[-1]["Role"] == m["role"]:
            collated[-1]["Content"] += "\n\n" + m["content"]
        else:
            collated.append({"Role": m["role"], "Content": m["content"]})
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return render(template_source, {"System": system, "Messages": collated, "Response": ""})


def ollama_generate_with_suffix(template_source: str, prompt: str, suffix: str) -> str:
    """/api/generate with a suffix: only Prompt, Suffix and Response reach the template."""
    return render(template_source, {"Prompt": prompt, "Suffix": suffix, "Response": ""})


def _template(name: str, custom: str, system: str = ""):
    return get_template(name, custom=custom, system=system)


@pytest.mark.parametrize(("name", "custom"), TEMPLATE_CASES)
@pytest.mark.parametrize("system", ["", "You answer in one word."])
def test_a_chat_rebuilds_the_studio_prompt(name, custom, system):
    template = _template(name, custom, system)
    source = go_template(template)
    one = ollama_chat(source, [{"role": "user", "content": "Uppercase the word apple."}], system)
    assert one == template.prompt(Example(instruction="Uppercase the word apple.", output=""))
    history = [{"role": r, "content": c} for r, c in HISTORY] + [{"role": "user", "content": "And 3 + 3?"}]
    assert ollama_chat(source, history, system) == template.prompt(
        Example(instruction="And 3 + 3?", output="", history=HISTORY))


@pytest.mark.parametrize(("name", "custom"), TEMPLATE_CASES)
def test_an_input_goes_in_the_suffix(name, custom):
    template = _template(name, custom)
    expected = template.prompt(Example(instruction="Uppercase the word.", input="apple", output=""))
    assert ollama_generate_with_suffix(go_template(template), "Uppercase the word.", "apple") == expected


def test_alpaca_switches_its_wording_on_the_input():
    source = go_template(TEMPLATES["alpaca"])
    with_input = ollama_generate_with_suffix(source, "Reverse the letters.", "kite")
    without = ollama_chat(source, [{"role": "user", "content": "Reverse the letters."}])
    assert "paired with an input" in with_input and "### Input:\nkite" in with_input
    assert "paired with an input" not in without and "### Input:" not in without


def test_text_that_looks_like_syntax_stays_literal():
    assert go_text('a {{ b }} """c"""') == '{{ "a {{ b }} \\"\\"\\"c\\"\\"\\"" }}'
    assert render(go_text('x {{ .System }} """'), {}) == 'x {{ .System }} """'


def _commands(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in parse_modelfile(text):
        out.setdefault(name, []).append(value)
    return out


def test_the_modelfile_parses_as_ollama_reads_it():
    template = get_template("phi3", system='Say "hi" first.\nThen answer.')
    text = modelfile("run-f16.gguf", template, GenerationSettings(max_new_tokens=12), "<eos>", template.system)
    commands = _commands(text)
    assert commands["from"] == ["./run-f16.gguf"]
    assert commands["template"] == [go_template(template)]
    assert commands["stop"] == [*template.stop_strings, "<eos>"] and "<|end|>" in commands["stop"]
    assert commands["temperature"] == ["0"] and commands["num_predict"] == ["12"]
    # Ollama's own default (1.1 over the last 64 tokens) would change greedy answers: the studio's 1 is written.
    assert commands["repeat_penalty"] == ["1"] and "repeat_last_n" not in commands
    assert commands["system"] == [template.system]


def test_the_loop_guard_penalises_the_whole_context_as_transformers_does():
    template = get_template("instruction_output")
    commands = _commands(modelfile("m.gguf", template, GenerationSettings(max_new_tokens=144,
                                                                         repetition_penalty=1.15), "<eos>"))
    assert commands["repeat_penalty"] == ["1.15"] and commands["repeat_last_n"] == ["-1"]
    assert commands["num_predict"] == ["144"]


def test_sampling_settings_become_parameters_and_odd_stops_survive():
    template = CustomTemplate(fmt="Q: {instruction}\nA: {output}")
    gen = GenerationSettings(do_sample=True, temperature=0.7, top_p=0.8, seed=3, repetition_penalty=1.2)
    commands = _commands(modelfile("m.gguf", template, gen, '</s> "end"'))
    assert commands["stop"] == [*template.stop_strings, '</s> "end"'] and "system" not in commands
    assert commands["temperature"] == ["0.7"] and commands["top_p"] == ["0.8"] and commands["seed"] == ["3"]
    assert commands["repeat_penalty"] == ["1.2"]


def test_a_system_prompt_with_triple_quotes_is_one_sentence():
    with pytest.raises(ExportError, match='contains """'):
        modelfile("m.gguf", TEMPLATES["chatml"], GenerationSettings(), "<eos>", 'a """ b')


def test_the_models_own_chat_template_is_left_to_the_gguf(tiny_tokenizer):
    tiny_tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
                                    "{% if add_generation_prompt %}<assistant>{% endif %}")
    try:
        template = get_template("tokenizer", tokenizer=tiny_tokenizer)
        commands = _commands(modelfile("m.gguf", template, GenerationSettings(), "<eos>"))
    finally:
        tiny_tokenizer.chat_template = None
    assert "template" not in commands and commands["stop"] == ["</s>", "<eos>"]
