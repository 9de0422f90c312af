"""`python -m bench sweep`: choose settings on VALIDATION rows, never on the test rows the demo reports.

    python -m bench sweep --preset cpu-demo "train.learning_rate=1e-3" "train.learning_rate=7e-4,train.epochs=1.5"
    python -m bench sweep --preset product-docs-cpu "train.epochs=2" "train.epochs=3,train.learning_rate=1e-3"

Each argument is one candidate: comma-separated section.key=value overrides of the preset. The base model is loaded
once; every candidate trains a fresh copy through TrainingJob (what the Train button runs) on the sample's training
rows, then base and tuned answer the sample's validation rows (`Sample.validation`, disjoint from train and test) as
Compare does. Prints one JSON line per candidate and a table: train time, final loss, validation BLEU before/after
with its 95% interval, exact match, and for the docs sample the graded answers (right facts, declined off-topic
questions, refused on-topic ones). The test split is never read.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def validation_examples(settings: Any) -> list[Any]:
    """The sample's validation rows as Examples (ValueError for a dataset that has none)."""
    from studio.data.convert import to_examples
    from studio.data.dataset import SAMPLE_PREFIX
    from studio.data.samples import SAMPLES
    from studio.data.shapes import detect_shape

    spec = settings.data.dataset
    sample = SAMPLES.get(spec.removeprefix(SAMPLE_PREFIX)) if spec.startswith(SAMPLE_PREFIX) else None
    if sample is None or sample.validation is None:
        raise ValueError(f"{spec} has no validation rows to sweep on; sweep a built-in sample that has them")
    rows = sample.validation()
    return to_examples(rows, detect_shape(rows))


def graded(settings: Any, references: list[str], answers: list[str]) -> dict[str, int] | None:
    """The docs sample's graded answers (right facts, declined/answered off-topic), None for other data."""
    if settings.data.dataset != "sample:product_docs":
        return None
    from studio.data.samples.product_docs import grade_counts

    return grade_counts(references, answers)


def run_candidate(spec: str, preset: str, base: Any, say: Any = print) -> dict[str, Any]:
    """Train one candidate on a copy of the base model and score it on the validation rows."""
    from studio.data.templates import template_for
    from studio.evaluate.before_after import compare
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.model.loading import LoadedModel
    from studio.presets import load_preset
    from studio.settings import apply_overrides, parse_assignments

    settings = apply_overrides(load_preset(preset), parse_assignments([p for p in spec.split(",") if p]))
    examples = validation_examples(settings)

    def loader(model_settings: Any, token: str | None = None) -> LoadedModel:
        return LoadedModel(copy.deepcopy(base.model), base.tokenizer, base.name, base.source, 0.0, True)

    with tempfile.TemporaryDirectory(prefix="studio-sweep-") as tmp:
        job = TrainingJob(settings, Path(tmp), queue=JobQueue(), model_loader=loader)
        load_start, start = round(os.getloadavg()[0], 2), time.perf_counter()
        job.start()
        job.join()
        train_s = time.perf_counter() - start
        if job.status != "completed":
            raise RuntimeError(f"candidate {spec!r} ended {job.status}: {job.error}")
        template = template_for(settings.data, base.tokenizer)
        result = compare(job.model, base.tokenizer, template, examples, settings.generation)
    losses = [r["loss"] for r in job.history() if r.get("loss") is not None]
    b, t = result.base, result.tuned
    references = [row.reference for row in result.rows]
    figures = {
        "spec": spec, "preset": preset, "steps": job.progress()["step"], "train_s": round(train_s, 1),
        "load": load_start, "final_loss": round(losses[-1], 3) if losses else None, "n_validation": t.n,
        "bleu_base": round(b.bleu, 1), "bleu_tuned": round(t.bleu, 1), "bleu_gain": round(t.bleu - b.bleu, 1),
        "bleu_ci": [round(result.changes["bleu"].low, 1), round(result.changes["bleu"].high, 1)]
        if "bleu" in result.changes and result.changes["bleu"].low is not None else None,
        "exact_base": round(b.exact_match * b.n), "exact_tuned": round(t.exact_match * t.n),
        "graded_tuned": graded(settings, references, [row.tuned for row in result.rows]),
    }
    say(json.dumps(figures))
    return figures


def sweep_table(results: list[dict[str, Any]]) -> str:
    """One line per candidate, best validation gain first."""
    header = f"  {'candidate':44s} {'steps':>5s} {'train s':>8s} {'loss':>6s} {'BLEU before -> after':>22s} exact"
    lines = ["validation sweep (the test split was not read)", header + "  graded"]
    for f in sorted(results, key=lambda r: r["bleu_gain"], reverse=True):
        g = f["graded_tuned"]
        grades = (f"facts {g['right']}/{g['facts']}, off-topic declined {g['declined']}/{g['off_topic']}, "
                  f"on-topic refused {g['refused']}") if g else ""
        lines.append(f"  {f['spec'] or '(preset as is)':44s} {f['steps']:5d} {f['train_s']:8.1f} "
                     f"{f['final_loss']:6.3f} {f['bleu_base']:8.1f} -> {f['bleu_tuned']:5.1f} ({f['bleu_gain']:+5.1f}, "
                     f"CI {f['bleu_ci']}) "
                     f"{f['exact_base']}->{f['exact_tuned']}/{f['n_validation']}  {grades}")
    return "\n".join(lines)


def sweep_command(preset: str, candidates: list[str], say: Any = print) -> list[dict[str, Any]]:
    """Run every candidate (the preset as is when none is given) and print the table."""
    from studio.model.loading import load_base_model
    from studio.presets import load_preset

    base = load_base_model(load_preset(preset).model)
    results = [run_candidate(spec, preset, base, say) for spec in (candidates or [""])]
    say(sweep_table(results))
    return results
