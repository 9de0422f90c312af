"""Training contenders of `python -m bench`, each run in its own process (so peak RSS is its own).

- studio:   `TrainingJob` exactly as the app runs it (FastSFTTrainer: logits only on trained positions, dynamic
            padding grouped by length, no gradient checkpointing, fused head and AdamW, pinned threads), then
            `pipeline.compare_run`.
- studio-balanced: the same with `train.balance_threads` (the adaptive thread count; reported on its own line).
- studio-random: the same with random batches (`train.group_by_length=false`), which makes its batches exactly TRL's
            (the same sampler and seed): the loss check compares it with TRL, so any gap is the training itself and
            not which examples happened to share a step (over a few steps at lr 1e-3 the order alone moves the loss
            by several per cent).
- trl, tutorial: the baselines, in bench/baselines.py.

All use the same examples, LoRA adapter, learning rate, optimiser steps, seed and thread count, and the same initial
LoRA weights: each seeds torch with the run's seed right before peft wraps the model (TRL does it itself), and
`adapter_fingerprint` of the freshly wrapped model proves it. The same instruments (bench/measure.py) measure them.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import Meter, adapter_fingerprint, finish, meter_callback

CONTENDERS = ("studio", "trl", "tutorial", "studio-balanced", "studio-random")
STUDIO_VARIANTS = {"studio-balanced": {"balance_threads": True}, "studio-random": {"group_by_length": False}}


def bench_settings(steps: int, examples: int, seed: int, threads: int = 0, prompts: int = 24,
                   overrides: dict[str, dict[str, Any]] | None = None) -> Any:
    """The cpu-demo defaults, cut to `steps` optimiser steps on the first `examples` training rows, `threads` pinned."""
    from studio.settings import StudioSettings, apply_overrides

    settings = apply_overrides(StudioSettings(), overrides or {})
    examples = examples or steps * settings.train.batch_size * settings.train.grad_accum
    settings = apply_overrides(settings, {
        "data": {"max_examples": examples, "max_test_examples": prompts},
        "train": {"max_steps": steps, "seed": seed, "threads": threads},
    })
    return apply_overrides(settings, overrides or {})  # again: a lever may set train.threads


def contender_overrides(name: str, overrides: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """The settings a studio variant changes (the adaptive thread count, or TRL's random batch order)."""
    merged = {k: dict(v) for k, v in (overrides or {}).items()}
    merged.setdefault("train", {}).update(STUDIO_VARIANTS.get(name, {}))
    return merged


def run_contender(name: str, steps: int, examples: int, seed: int, warmup: int, pad_to: int, threads: int,
                  prompts: int, loader: Any = None, overrides: dict[str, dict[str, Any]] | None = None,
                  compare: bool = True) -> dict[str, Any]:
    """Train one contender in this process and return its figures (the caller runs each in a fresh process).

    `loader(model_settings) -> LoadedModel` replaces `load_base_model` (the tests pass a tiny model); `overrides`
    change settings (the levers); `compare=False` skips the studio's Compare after training.
    """
    from bench.demo import load1, peak_rss_bytes

    settings = bench_settings(steps, examples, seed, threads, prompts, contender_overrides(name, overrides))
    load_start = load1()
    if name == "studio" or name in STUDIO_VARIANTS:
        figures = _run_studio(settings, warmup, pad_to, loader, compare and name == "studio")
    else:
        from bench.baselines import run_trl, run_tutorial

        figures = {"trl": run_trl, "tutorial": run_tutorial}[name](settings, warmup, pad_to, loader)
    return {"contender": name, **figures, "peak_rss_bytes": peak_rss_bytes(),
            "load_start": load_start, "load_end": load1()}


def _run_studio(settings: Any, warmup: int, pad_to: int, loader: Any = None, compare: bool = True) -> dict[str, Any]:
    """TrainingJob as the app runs it (the meter rides along on build_trainer), then Compare on the test prompts."""
    from studio.data.formatting import tokenize_dataset
    from studio.data.templates import template_for
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.pipeline import compare_run, from_job
    from studio.train import steps as training

    meters: list[Meter] = []
    initial: list[str] = []
    original = training.build_trainer

    def build_with_meter(model, *args, **kwargs):
        trainer = original(model, *args, **kwargs)
        initial.append(adapter_fingerprint(trainer.model))
        meters.append(Meter(trainer.model))
        trainer.add_callback(meter_callback(meters[-1]))
        return trainer

    training.build_trainer = build_with_meter
    try:
        with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
            job = TrainingJob(settings, Path(tmp), queue=JobQueue(), model_loader=loader)
            start, first_loss = time.perf_counter(), None
            job.start()
            while not job.join(timeout=0.05):
                if first_loss is None and any(r.get("loss") is not None for r in job.history()):
                    first_loss = time.perf_counter() - start
            if job.status != "completed":
                raise RuntimeError(f"the studio run ended {job.status}: {job.error}")
            load_seconds = next(float(line.split(" in ")[1].split(" s")[0]) for line in job.logs()
                                if line.startswith("Loaded model"))
            d = settings.data
            template = template_for(d, job.tokenizer)
            features = tokenize_dataset(job.tokenizer, template, job.splits.train, d.max_length)
            losses = [r["loss"] for r in job.history() if r.get("loss") is not None]
            figures = finish(job.model, meters[0], features, warmup, losses, load_seconds, initial[0])
            if compare:  # the rest of the default run, so peak RSS covers what the demo does
                compare_start = time.perf_counter()
                compare_run(from_job(job), limit=d.max_test_examples)
                figures["compare_seconds"] = time.perf_counter() - compare_start
    finally:
        training.build_trainer = original
    return {**figures, "first_loss_seconds": first_loss}
