"""`python -m bench probe`: what the forgetting probe costs, and what the base model scores on it.

Usage
    python -m bench probe                      # studio vs plain lm-eval HFLM, 2 interleaved rounds, batch 16
    python -m bench probe --batch-sizes 8,16,32,64 --repeats 3
    python -m bench probe --run RUN_ID         # a trained run's adapter instead of a fresh (zero) LoRA adapter

Both contenders score the built-in probe (studio_probe, every item) on the embedded Gemma 3 270M for the base model
(adapter disabled) and the tuned model, in one process, interleaved round by round:
  (a) studio   - `studio.evaluate.probe.run_probe`: lm-eval's HFLM subclassed to run the output head only on the
                 positions a choice is scored at, with the ThreadBalancer
  (b) lm-eval  - lm-eval's plain `HFLM(pretrained=<the same model instance>)`: full-vocabulary logits everywhere
The two must give the same answer on every item. Printed: seconds for both models together (median over rounds)
at each batch size, the ratio to lm-eval at the same batch size, the base model's accuracy per category (against
chance, 1/4 with four choices), the 1-minute load average next to each figure, and a last line of JSON with the
PASS/FAIL of the target (both models together <= 60 s).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 60.0
CHANCE = 0.25


def load_models(run_id: str | None, runs_dir: Path | None) -> tuple[Any, Any]:
    """(PeftModel, tokenizer): the embedded model with a run's adapter, or with a fresh LoRA adapter (B = 0)."""
    from peft import LoraConfig, get_peft_model

    if run_id:
        from studio.pipeline import open_run
        from studio.runs import runs_dir as default_runs_dir

        rm = open_run(runs_dir or default_runs_dir(), run_id)
        return rm.model, rm.tokenizer
    from studio.model.loading import load_base_model
    from studio.settings import StudioSettings

    loaded = load_base_model(StudioSettings().model, for_training=False)
    lora = StudioSettings().lora
    model = get_peft_model(loaded.model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, target_modules="all-linear"))
    return model.eval(), loaded.tokenizer


def _load1() -> float:
    return os.getloadavg()[0]


def time_studio(model: Any, tokenizer: Any, batch_size: int) -> tuple[float, Any]:
    """Seconds for base + tuned through the studio's probe, and its result."""
    from studio.evaluate.probe import run_probe

    start = time.perf_counter()
    result = run_probe(model, tokenizer, batch_size=batch_size)
    return time.perf_counter() - start, result


def time_lm_eval(model: Any, tokenizer: Any, batch_size: int) -> tuple[float, dict]:
    """Seconds for base + tuned through lm-eval's plain HFLM on the same model instance, and the item scores."""
    from lm_eval.models.huggingface import HFLM

    from studio.evaluate.probe import builtin_tasks, load_tasks, score_both

    class QuietHFLM(HFLM):
        def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
            return super().loglikelihood(requests, disable_tqdm=True)  # no progress bar over the bench's lines

    start = time.perf_counter()
    lm = QuietHFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, backend="causal")
    scores, _ = score_both(lm, model, load_tasks(builtin_tasks()))
    return time.perf_counter() - start, scores


def same_answers(result: Any, scores: dict) -> bool:
    """True when the studio's shortcut and plain lm-eval agree on every item, for both models and both metrics."""
    return all(result.items[task][which] == scores[which][task] for task in result.items for which in scores)


def run(args: argparse.Namespace, say: Any = print) -> dict[str, Any]:
    """Interleave the contenders at every batch size; medians, ratios, base accuracy per category."""
    model, tokenizer = load_models(args.run, args.runs_dir)
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    seconds: dict[str, list[float]] = {}
    agree, result = (None if args.skip_baseline else True), None
    for round_ in range(1, args.repeats + 1):
        for size in sizes:
            took, result = time_studio(model, tokenizer, size)
            seconds.setdefault(f"studio@{size}", []).append(took)
            say(f"round {round_} studio  batch {size:3d}: {took:6.1f} s  (load {_load1():.1f})")
            if not args.skip_baseline:
                took, scores = time_lm_eval(model, tokenizer, size)
                seconds.setdefault(f"lm-eval@{size}", []).append(took)
                agree = agree and same_answers(result, scores)
                say(f"round {round_} lm-eval batch {size:3d}: {took:6.1f} s  (load {_load1():.1f})")
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    ratios = {str(s): medians[f"lm-eval@{s}"] / medians[f"studio@{s}"] for s in sizes if f"lm-eval@{s}" in medians}
    base = {c.label: c.base for c in result.categories}
    best = min(medians[f"studio@{s}"] for s in sizes)
    verdicts = {"both_models_le_60s": best <= TARGET_SECONDS, "base_above_chance": min(base.values()) > CHANCE}
    if agree is not None:
        verdicts["same_answers_as_lm_eval"] = agree
    return {"seconds": medians, "speedup_vs_lm_eval": ratios, "base_accuracy": base,
            "base_overall": result.overall.base, "items": result.overall.n, "same_answers": agree,
            "load1": _load1(), "verdicts": verdicts}


def table(figures: dict[str, Any]) -> str:
    """The figures as a short readable table."""
    lines = ["", "contender@batch      seconds (base + tuned)   x faster than lm-eval"]
    for key, value in figures["seconds"].items():
        ratio = figures["speedup_vs_lm_eval"].get(key.split("@")[1]) if key.startswith("studio") else None
        lines.append(f"{key:20s} {value:10.1f}" + (f"   {ratio:20.2f}x" if ratio else ""))
    lines += ["", f"base model accuracy ({figures['items']} items, chance {CHANCE:.0%}):"]
    lines += [f"  {label:16s} {100 * acc:5.1f}%" for label, acc in figures["base_accuracy"].items()]
    lines += [f"  {'overall':16s} {100 * figures['base_overall']:5.1f}%",
              f"same answer on every item as plain lm-eval: {figures['same_answers']} (None: not compared)",
              f"load average (1 min) at the end: {figures['load1']:.2f}"]
    lines += [f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in figures["verdicts"].items()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Options of `python -m bench probe`."""
    parser = argparse.ArgumentParser(prog="python -m bench probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", default="16", help="comma-separated batch sizes to time (default 16)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--skip-baseline", action="store_true", help="time the studio only (no plain lm-eval)")
    parser.add_argument("--run", default=None, help="a run id whose adapter to load (default: a fresh adapter)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="where runs live (default $STUDIO_RUNS_DIR)")
    parser.add_argument("--write-readme", action="store_true", help="rewrite the README's probe table from this run")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the probe benchmark; prints the table, then one JSON line; exit 1 when a target fails."""
    args = build_parser().parse_args(argv)
    figures = run(args, say=lambda line: print(line, flush=True))
    print(table(figures), flush=True)
    if args.write_readme:
        import torch

        from bench.readme import machine_facts, probe_block, write_block

        print(f"Wrote {write_block('probe', probe_block(figures, machine_facts(torch.get_num_threads())))}")
    print(json.dumps(figures, default=float))
    return 0 if all(figures["verdicts"].values()) else 1
