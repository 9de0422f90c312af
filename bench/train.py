"""Training contenders of `python -m bench`, each run in its own process (so peak RSS is its own).

- studio:   `TrainingJob` exactly as the app runs it (FastSFTTrainer: logits only on trained positions, dynamic
            padding grouped by length, no gradient checkpointing, ThreadBalancer), then `pipeline.compare_run`.
- trl:      TRL `SFTTrainer` as a tutorial calls it: prompt/completion rows (completion-only loss), `peft_config`,
            every other SFTConfig default (gradient checkpointing on, entropy + token accuracy over the full
            vocabulary, every position scored through the head on a CPU, random batches padded to the longest).
- tutorial: `transformers.Trainer`, each example padded with EOS to a fixed length, labels = input ids (loss on the
            whole sequence, padding included), batch 1 with 4 accumulation steps.

All three use the same examples, LoRA adapter, learning rate, optimiser steps and seed. The same instruments measure
them: a forward pre-hook on the decoder counts real tokens and positions of every training forward, a hook on the
output head counts the positions it projects, and a callback times each optimiser step end to end (step end to step
end: collation, forward, backward, optimiser, logging and metrics all count).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.flops import ModelShape, training_flops

CONTENDERS = ("studio", "trl", "tutorial")


class Meter:
    """Counts what every training forward processes and times each optimiser step (step end to step end)."""

    def __init__(self, model: Any, head_on_every_position: bool = False):
        from studio.train.trainer import causal_parts

        decoder, head, _, _ = causal_parts(model)
        self.every_position = head_on_every_position  # TRL's CPU head scores every position without calling it
        self.steps: list[dict[str, Any]] = []
        self._pending = self._empty()
        self._last = time.perf_counter()
        decoder.register_forward_pre_hook(self._on_decoder, with_kwargs=True)
        head.register_forward_hook(self._on_head)

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {"real": 0, "positions": 0, "head": 0, "lengths": []}

    def _on_decoder(self, module, args, kwargs):
        if not torch.is_grad_enabled():
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        batch, width = ids.shape
        self._pending["real"] += int(mask.sum()) if mask is not None else ids.numel()
        self._pending["positions"] += ids.numel()
        self._pending["lengths"] += [width] * batch
        if self.every_position:
            self._pending["head"] += batch * (width - 1)

    def _on_head(self, module, args, output):
        if torch.is_grad_enabled():
            self._pending["head"] += args[0].numel() // args[0].shape[-1]

    def start(self) -> None:
        """The clock of the first step starts now."""
        self._last = time.perf_counter()

    def step_end(self) -> None:
        """Close one optimiser step: its seconds, tokens and the torch thread count at its end."""
        now = time.perf_counter()
        self.steps.append({**self._pending, "seconds": now - self._last, "threads": torch.get_num_threads()})
        self._pending, self._last = self._empty(), now


def _meter_callback(meter: Meter) -> Any:
    from transformers import TrainerCallback

    class MeterCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            meter.start()

        def on_step_end(self, args, state, control, **kwargs):
            meter.step_end()

    return MeterCallback()


def summarise_steps(steps: list[dict[str, Any]], shape: ModelShape, n_lora: int, warmup: int) -> dict[str, Any]:
    """Medians over the steps after `warmup`: seconds/step, real tokens/s, FLOP/s; padding over all steps."""
    measured = steps[warmup:] or steps
    flops = [training_flops(shape, n_lora, s["positions"], s["head"], s["lengths"]) for s in measured]
    real, positions = sum(s["real"] for s in steps), sum(s["positions"] for s in steps)
    return {
        "steps": len(steps), "measured_steps": len(measured),
        "seconds_per_step": statistics.median(s["seconds"] for s in measured),
        "tokens_per_second": statistics.median(s["real"] / s["seconds"] for s in measured),
        "flops_per_second": statistics.median(f / s["seconds"] for f, s in zip(flops, measured)),
        "flops_per_real_token": sum(flops) / max(1, sum(s["real"] for s in measured)),
        "padding_fraction": 1 - real / positions if positions else 0.0,
        "head_share_of_positions": sum(s["head"] for s in steps) / positions if positions else 0.0,
        "real_tokens": real, "threads": statistics.median(s["threads"] for s in measured),
    }


def completion_loss(model: Any, features: list[Any], batch_size: int = 16) -> float:
    """Mean next-token loss over every answer token (EOS included) of the examples: the same yardstick for all."""
    import torch.nn.functional as F

    from studio.train.trainer import IGNORE_INDEX, _project, causal_parts

    decoder, head, cap, scale = causal_parts(model)
    was_training, total, count = model.training, 0.0, 0
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(features), batch_size):
            chunk = features[i:i + batch_size]
            width = max(len(f.input_ids) for f in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            labels = torch.full((len(chunk), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, f in enumerate(chunk):
                n = len(f.input_ids)
                ids[r, :n] = torch.tensor(f.input_ids)
                mask[r, :n] = 1
                labels[r, :n] = torch.tensor([t if m else IGNORE_INDEX for t, m in zip(f.input_ids, f.completion_mask)])
            hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state[:, :-1]
            target = labels[:, 1:]
            keep = target != IGNORE_INDEX
            logits = _project(head, hidden[keep], cap, scale).float()
            total += float(F.cross_entropy(logits, target[keep], reduction="sum"))
            count += int(keep.sum())
    model.train(was_training)
    return total / max(1, count)


def bench_settings(steps: int, examples: int, seed: int, threads: int = 0, prompts: int = 24,
                   overrides: dict[str, dict[str, Any]] | None = None) -> Any:
    """The cpu-demo defaults, cut to `steps` optimiser steps on the first `examples` training rows."""
    from studio.settings import StudioSettings, apply_overrides

    settings = apply_overrides(StudioSettings(), overrides or {})
    examples = examples or steps * settings.train.batch_size * settings.train.grad_accum
    settings = apply_overrides(settings, {
        "data": {"max_examples": examples, "max_test_examples": prompts},
        "train": {"max_steps": steps, "seed": seed, "threads": threads},
    })
    return apply_overrides(settings, overrides or {})  # again: a lever may set train.threads


def run_contender(name: str, steps: int, examples: int, seed: int, warmup: int, pad_to: int, threads: int,
                  prompts: int, loader: Any = None, overrides: dict[str, dict[str, Any]] | None = None,
                  compare: bool = True) -> dict[str, Any]:
    """Train one contender in this process and return its figures (the caller runs each in a fresh process).

    `loader(model_settings) -> LoadedModel` replaces `load_base_model` (the tests pass a tiny model); `overrides`
    change settings (the levers); `compare=False` skips the studio's Compare after training.
    """
    from bench.demo import load1, peak_rss_bytes

    settings = bench_settings(steps, examples, seed, threads, prompts, overrides)
    load_start = load1()
    if name == "studio":
        figures = _run_studio(settings, warmup, pad_to, loader, compare)
    else:
        figures = {"trl": _run_trl, "tutorial": _run_tutorial}[name](settings, warmup, pad_to, loader)
    return {"contender": name, **figures, "peak_rss_bytes": peak_rss_bytes(),
            "load_start": load_start, "load_end": load1()}


def _shared(settings: Any, loader: Any = None) -> tuple[Any, Any, Any, list[Any]]:
    """Loaded base model, template, splits and the tokenised training features, as the studio makes them."""
    from studio.data.formatting import tokenize_dataset
    from studio.data.templates import template_for
    from studio.model.loading import load_base_model
    from studio.train.steps import prepare_data

    splits = prepare_data(settings)
    loaded = (loader or load_base_model)(settings.model)
    d = settings.data
    template = template_for(d, loaded.tokenizer)
    features = tokenize_dataset(loaded.tokenizer, template, splits.train, d.max_length)
    return loaded, template, splits, features


def _finish(model: Any, meter: Meter, features: list[Any], warmup: int, logged_losses: list[float],
            load_seconds: float) -> dict[str, Any]:
    from bench.flops import lora_parameters, model_shape

    shape = model_shape(model)
    return {
        **summarise_steps(meter.steps, shape, lora_parameters(model), warmup),
        "final_loss": completion_loss(model, features),
        "last_logged_loss": logged_losses[-1] if logged_losses else None,
        "load_seconds": load_seconds,
    }


def _run_studio(settings: Any, warmup: int, pad_to: int, loader: Any = None, compare: bool = True) -> dict[str, Any]:
    """TrainingJob as the app runs it (the meter rides along on build_trainer), then Compare on the test prompts."""
    from studio.data.formatting import tokenize_dataset
    from studio.data.templates import template_for
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.pipeline import compare_run, from_job
    from studio.train import steps as training

    meters: list[Meter] = []
    original = training.build_trainer

    def build_with_meter(model, *args, **kwargs):
        trainer = original(model, *args, **kwargs)
        meters.append(Meter(trainer.model))
        trainer.add_callback(_meter_callback(meters[-1]))
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
            figures = _finish(job.model, meters[0], features, warmup, losses, load_seconds)
            if compare:  # the rest of the default run, so peak RSS covers what the demo does
                compare_start = time.perf_counter()
                compare_run(from_job(job), limit=d.max_test_examples)
                figures["compare_seconds"] = time.perf_counter() - compare_start
    finally:
        training.build_trainer = original
    return {**figures, "first_loss_seconds": first_loss}


def _run_trl(settings: Any, warmup: int, pad_to: int, loader: Any = None) -> dict[str, Any]:
    """TRL SFTTrainer with its defaults; only what must match the others (data, LoRA, lr, steps, seed) is passed."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from studio.train.config import build_lora_config

    loaded, template, splits, features = _shared(settings, loader)
    loaded.tokenizer.padding_side = "right"
    rows = [{"prompt": template.prompt(ex), "completion": ex.output} for ex in splits.train]
    t = settings.train
    with tempfile.TemporaryDirectory(prefix="trl-bench-") as tmp:
        args = SFTConfig(output_dir=tmp, max_steps=t.max_steps, per_device_train_batch_size=t.batch_size,
                         learning_rate=t.learning_rate, seed=t.seed, bf16=False, use_cpu=True, report_to="none",
                         save_strategy="no", disable_tqdm=True)
        trainer = SFTTrainer(model=loaded.model, args=args, train_dataset=Dataset.from_list(rows),
                             processing_class=loaded.tokenizer, peft_config=build_lora_config(settings.lora, loaded.model))
        meter = Meter(trainer.model, head_on_every_position=True)
        trainer.add_callback(_meter_callback(meter))
        trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    return _finish(trainer.model, meter, features, warmup, losses, loaded.load_seconds)


def _run_tutorial(settings: Any, warmup: int, pad_to: int, loader: Any = None) -> dict[str, Any]:
    """transformers.Trainer on examples padded with EOS to `pad_to` tokens, loss on every position, batch 1 x 4."""
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator

    from studio.train.config import build_lora_config

    loaded, template, splits, features = _shared(settings, loader)
    eos = loaded.tokenizer.eos_token_id
    rows = []
    for f in features:
        ids = list(f.input_ids)[:pad_to]
        padded = ids + [eos] * (pad_to - len(ids))  # pad = EOS and labels = input ids, as the tutorial does
        rows.append({"input_ids": padded, "attention_mask": [1] * len(ids) + [0] * (pad_to - len(ids)),
                     "labels": list(padded)})
    model = get_peft_model(loaded.model, build_lora_config(settings.lora, loaded.model))
    t = settings.train
    with tempfile.TemporaryDirectory(prefix="tutorial-bench-") as tmp:
        args = TrainingArguments(output_dir=tmp, max_steps=t.max_steps, per_device_train_batch_size=1,
                                 gradient_accumulation_steps=4, learning_rate=t.learning_rate, warmup_steps=1,
                                 seed=t.seed, use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
                                 disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                          data_collator=default_data_collator)
        meter = Meter(trainer.model)
        trainer.add_callback(_meter_callback(meter))
        trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    return _finish(trainer.model, meter, features, warmup, losses, loaded.load_seconds)
