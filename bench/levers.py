"""`python -m bench levers`: switch one speed lever off at a time and measure what it was worth.

Training levers are settings of the studio's own path (TrainingJob), each run in a fresh process at the bench's
pinned thread count and interleaved with the unchanged default: the full-vocabulary head (`train.fast_loss=false`),
random batches instead of length-grouped ones (`train.group_by_length=false`), gradient checkpointing, the output
head's logits then cross-entropy instead of both in one pass over its weights (`train.fused_head=false`), the
for-loop AdamW instead of the fused one (`train.optimizer=adamw_torch`), and the adaptive thread count
(`train.balance_threads=true`, which trades reproducibility for speed on a busy machine). Generation levers run in
one process, interleaved: batch size, batches in arrival order instead of bucketed by length, the adaptive thread
count, a static KV cache, and no KV cache.
"""
from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from typing import Any

import torch

TRAIN_LEVERS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    "full-vocabulary head": {"train": {"fast_loss": False}},
    "random batches": {"train": {"group_by_length": False}},
    "gradient checkpointing": {"train": {"gradient_checkpointing": True}},
    "unfused output head (logits, then cross-entropy)": {"train": {"fused_head": False}},
    "for-loop AdamW": {"train": {"optimizer": "adamw_torch"}},
    "adaptive thread count": {"train": {"balance_threads": True}},
}


def _arrival_order(lengths: list[int], batch_size: int) -> list[list[int]]:
    return [list(range(i, min(i + batch_size, len(lengths)))) for i in range(0, len(lengths), batch_size)]


@contextlib.contextmanager
def generation_lever(name: str) -> Any:
    """Patch studio.evaluate.generation for one generation lever (the bench only; restored afterwards)."""
    from studio.evaluate import generation as evaluation
    from studio.model.threads import ThreadPolicy, use_threads

    saved = {k: getattr(evaluation, k) for k in ("plan_batches", "generation_kwargs")}
    original_kwargs = saved["generation_kwargs"]
    policy = contextlib.nullcontext()
    if name == "arrival order":
        evaluation.plan_batches = _arrival_order
    elif name == "adaptive thread count":
        policy = use_threads(ThreadPolicy(torch.get_num_threads(), balance=True))
    elif name in ("static cache", "no KV cache"):
        extra = {"cache_implementation": "static"} if name == "static cache" else {"use_cache": False}
        evaluation.generation_kwargs = lambda gen, pad: {**original_kwargs(gen, pad), **extra}
    try:
        with policy:
            yield
    finally:
        for key, value in saved.items():
            setattr(evaluation, key, value)


def run_generation_levers(n_prompts: int, repeats: int, batch_sizes: tuple[int, ...] = (8,),
                          loader: Any = None) -> dict[str, Any]:
    """Each generation lever on the same prompts, interleaved; median seconds and whether answers changed."""
    from bench.demo import load1
    from bench.eval import held_out_prompts
    from studio.evaluate.generation import generate

    prompts, loaded, gen = held_out_prompts(n_prompts, loader)
    variants = [("default", gen, "default")]
    variants += [(f"batch {b}", dataclasses.replace(gen, batch_size=b), "default") for b in batch_sizes]
    variants += [(f"batch {batch_sizes[0]}, arrival order", dataclasses.replace(gen, batch_size=batch_sizes[0]),
                  "arrival order")]
    variants += [(lever, gen, lever) for lever in ("adaptive thread count", "static cache", "no KV cache")]
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    answers: dict[str, list[str]] = {}
    loads: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(repeats):
        for name, settings, lever in variants:
            loads[name].append(load1())
            with generation_lever(lever):
                start = time.perf_counter()
                answers[name] = generate(loaded.model, loaded.tokenizer, prompts, settings)
                seconds[name].append(time.perf_counter() - start)
    base = statistics.median(seconds["default"])
    return {name: {"seconds": statistics.median(s), "vs_default": statistics.median(s) / base,
                   "same_answers": answers[name] == answers["default"], "loads": loads[name],
                   "batch_size": dict((n, g.batch_size) for n, g, _ in variants)[name]}
            for name, s in seconds.items()} | {"_prompts": len(prompts), "_max_new_tokens": gen.max_new_tokens,
                                               "_threads_at_start": torch.get_num_threads()}


def levers_command(args: Any, run_worker: Any, say: Any) -> dict[str, Any]:
    """Training levers (a fresh process per run, rounds interleaved), then the generation levers; all figures."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TRAIN_LEVERS}
    if "train" in args.only:
        for round_ in range(args.repeats):
            # every other round runs the other way round, so no lever always gets the first (or last) slot
            order = list(TRAIN_LEVERS.items())
            for name, overrides in order if round_ % 2 == 0 else order[::-1]:
                spec = {"kind": "train", "contender": "studio", "steps": args.steps, "examples": args.examples,
                        "seed": args.seed, "warmup": args.warmup, "pad_to": args.pad_to, "threads": args.threads,
                        "prompts": args.prompts, "overrides": overrides, "compare": False}
                r = run_worker(spec)
                runs[name].append(r)
                say(f"  round {round_ + 1} {name:28s} {r['tokens_per_second']:7.1f} tokens/s "
                    f"{r['seconds_per_step']:6.2f} s/step  threads {r['threads']:.0f}  "
                    f"load {r['load_start']}->{r['load_end']}")
    out: dict[str, Any] = {"train": {}, "generation": None, "threads": args.threads}
    if all(runs.values()):
        med = lambda rs, key: statistics.median(r[key] for r in rs)  # noqa: E731
        base, base_cpu = med(runs["default"], "tokens_per_second"), med(runs["default"], "tokens_per_cpu_second")
        for name, rs in runs.items():
            tps, cpu = med(rs, "tokens_per_second"), med(rs, "tokens_per_cpu_second")
            out["train"][name] = {"tokens_per_second": tps, "default_speedup": base / tps,
                                  "tokens_per_cpu_second": cpu, "default_cpu_speedup": base_cpu / cpu,
                                  "peak_rss_gb": max(r["peak_rss_bytes"] for r in rs) / 1e9,
                                  "loads": [[r["load_start"], r["load_end"]] for r in rs]}
            say(f"Training lever {name:28s} {tps:7.1f} tokens/s, {cpu:6.1f} per CPU second; the default is "
                f"{base / tps:.2f}x this ({base_cpu / cpu:.2f}x per CPU second)")
    if "eval" in args.only:
        gen = run_worker({"kind": "gen_levers", "prompts": args.prompts, "repeats": args.repeats,
                          "threads": args.threads})
        out["generation"] = gen
        for name, g in gen.items():
            if not name.startswith("_"):
                say(f"Generation lever {name:28s} {g['seconds']:6.2f} s = {g['vs_default']:.2f}x the default "
                    f"(batch {g['batch_size']}, same answers {g['same_answers']}, loads {g['loads']})")
    return out
