"""`python -m bench`: the studio's speed and memory against the tutorial-style pipelines, on this machine.

Usage
    python -m bench                  # train + eval + latency, about 15 minutes on 2 busy cores
    python -m bench --quick          # fewer steps/prompts, one round, no cold load: about 4 minutes
    python -m bench --steps 8 --examples 64 --prompts 24 --repeats 3 --skip-cold
    python -m bench --only train     # or eval, latency (comma-separated)
    python -m bench --threads 2      # pin every contender to 2 torch threads (no ThreadBalancer)
    python -m bench demo             # the 2-minute demo: default settings, train + compare (bench/demo.py)
    python -m bench demo --set train.learning_rate=1e-3   # the demo with overrides
    python -m bench levers           # switch each speed lever off in turn (bench/levers.py)
    python -m bench data             # big files: load seconds and peak RSS against the targets (bench/data.py)
    python -m bench probe            # the forgetting probe's cost and base accuracy (bench/probe.py, own options)

Everything runs on the embedded Gemma 3 270M and the built-in word_tasks data (warm fp32 cache), with the same
examples, optimiser steps, LoRA adapter, learning rate and seed for every training contender:
  (a) studio   - TrainingJob as the app runs it (FastSFTTrainer, length-grouped dynamic padding, ThreadBalancer)
  (b) trl      - TRL SFTTrainer with its defaults as a tutorial calls it (gradient checkpointing, full-vocabulary
                 entropy/accuracy, prompt/completion rows so completion-only loss)
  (c) tutorial - transformers.Trainer, every example padded to --pad-to tokens, loss on the whole sequence,
                 batch 1 x 4 accumulation steps
Each training run is a fresh process (its own peak RSS); contenders are interleaved round by round and the
figures are medians over rounds (and over the steps after --warmup within a run). Tutorials run torch's default
thread count; the studio balances threads against other processes, which matters on a shared machine: pass
--threads N to pin everyone. Evaluation answers --prompts held-out prompts with (a) studio batched generate,
(b) one prompt at a time model.generate, (c) pipeline("text-generation", num_beams=5); (a) and (b) must agree
token for token. MFU is model FLOPs per second (formula in bench/flops.py) over a GEMM ceiling (best fp32
torch.matmul rate over thread counts) measured in the same run. Every figure is printed next to the 1-minute load
average; the last line is one JSON object with all of them, the ratios and the PASS/FAIL of each target.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULT = "BENCH_RESULT "
TARGETS = {
    "train_vs_trl": 2.0, "train_vs_tutorial": 3.0, "eval_vs_single": 4.0,
    "warm_load_s": 5.0, "first_loss_s": 15.0, "peak_rss_gb": 3.0, "mfu": 0.5,
}


# ---- workers (each in its own process) --------------------------------------------------------------------------
def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement described by `spec` in this process."""
    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    if spec["kind"] == "train":
        from bench.train import run_contender

        return run_contender(spec["contender"], spec["steps"], spec["examples"], spec["seed"], spec["warmup"],
                             spec["pad_to"], spec.get("threads", 0), spec["prompts"],
                             overrides=spec.get("overrides"), compare=spec.get("compare", True))
    if spec["kind"] == "eval":
        from bench.eval import run_eval

        return run_eval(spec["prompts"], spec["repeats"], threads=spec.get("threads", 0))
    if spec["kind"] == "gen_levers":
        from bench.levers import run_generation_levers

        return run_generation_levers(spec["prompts"], spec["repeats"])
    if spec["kind"] == "load":
        from studio.model.embedded import embedded_cache_ready
        from studio.model.loading import load_base_model
        from studio.settings import StudioSettings

        cold = not embedded_cache_ready()
        first = load_base_model(StudioSettings().model).load_seconds
        again = load_base_model(StudioSettings().model).load_seconds  # as a long-running app loads it again
        return {"seconds": first, "again_seconds": again, "cold": cold}
    raise ValueError(f"unknown worker kind {spec['kind']!r}")


def run_worker(spec: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run `_worker(spec)` in a fresh Python process and return what it reported."""
    cmd = [sys.executable, "-m", "bench", "_worker", json.dumps(spec)]
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, **(env or {}), "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=root)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench worker {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT):])


# ---- the bench ---------------------------------------------------------------------------------------------------
def load1() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def measure_ceiling(say) -> dict[str, Any]:
    """The GEMM ceiling now, with the load it was measured at."""
    from bench.flops import gemm_ceiling

    load = load1()
    ceiling = gemm_ceiling()
    say(f"  GEMM ceiling {ceiling['flops_per_second'] / 1e9:.0f} GFLOP/s ({ceiling['threads']} thread(s), load {load})")
    return {**ceiling, "load": load}


def bench_training(args: argparse.Namespace, say) -> dict[str, Any]:
    """Every training contender `args.repeats` times, interleaved (the order rotates each round)."""
    from bench.train import CONTENDERS

    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
    ceilings = [measure_ceiling(say)]
    for round_ in range(args.repeats):
        order = CONTENDERS[round_ % 3:] + CONTENDERS[:round_ % 3]
        for name in order:
            spec = {"kind": "train", "contender": name, "steps": args.steps, "examples": args.examples,
                    "seed": args.seed, "warmup": args.warmup, "pad_to": args.pad_to, "threads": args.threads,
                    "prompts": args.prompts}
            result = run_worker(spec)
            runs[name].append(result)
            say(f"  round {round_ + 1} {name:9s} {result['tokens_per_second']:7.1f} tokens/s  "
                f"{result['seconds_per_step']:6.2f} s/step  loss {result['final_loss']:.3f}  "
                f"threads {result['threads']:.0f}  load {result['load_start']}->{result['load_end']}")
        ceilings.append(measure_ceiling(say))
    return {"runs": runs, "ceilings": ceilings}


def summarise_training(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians over rounds per contender, MFU against the median ceiling, and the ratios."""
    ceiling = statistics.median(c["flops_per_second"] for c in raw["ceilings"])
    out: dict[str, Any] = {"gemm_ceiling_gflops": ceiling / 1e9,
                           "ceiling_loads": [c["load"] for c in raw["ceilings"]]}
    for name, runs in raw["runs"].items():
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        out[name] = {
            "tokens_per_second": med("tokens_per_second"), "seconds_per_step": med("seconds_per_step"),
            "padding_fraction": med("padding_fraction"), "final_loss": med("final_loss"),
            "peak_rss_gb": max(r["peak_rss_bytes"] for r in runs) / 1e9,
            "mfu": med("flops_per_second") / ceiling, "gflops": med("flops_per_second") / 1e9,
            "flops_per_real_token": med("flops_per_real_token"), "threads": med("threads"),
            "head_share_of_positions": med("head_share_of_positions"), "load_seconds": med("load_seconds"),
            "loads": [[r["load_start"], r["load_end"]] for r in runs],
            "rounds_tokens_per_second": [round(r["tokens_per_second"], 1) for r in runs],
        }
        if name == "studio":
            out[name]["first_loss_seconds"] = med("first_loss_seconds")
            out[name]["compare_seconds"] = med("compare_seconds")
    s = out["studio"]
    out["ratio_vs_trl"] = s["tokens_per_second"] / out["trl"]["tokens_per_second"]
    out["ratio_vs_tutorial"] = s["tokens_per_second"] / out["tutorial"]["tokens_per_second"]
    out["loss_gap_vs_trl"] = abs(s["final_loss"] - out["trl"]["final_loss"]) / out["trl"]["final_loss"]
    return out


def bench_latency(args: argparse.Namespace, training: dict[str, Any] | None, say) -> dict[str, Any]:
    """Warm load (fresh processes, cache built), cold load (cache built into a temp STUDIO_HOME), first loss point."""
    warm = [run_worker({"kind": "load"}) for _ in range(2)]
    out: dict[str, Any] = {"warm_load_s": statistics.median(w["seconds"] for w in warm),
                           "warm_load_again_s": statistics.median(w["again_seconds"] for w in warm),
                           "warm_load_load": load1()}
    if training:
        out["first_loss_s"] = training["studio"]["first_loss_seconds"]
    say(f"  warm load {out['warm_load_s']:.1f} s, again in the same process {out['warm_load_again_s']:.1f} s "
        f"(load {out['warm_load_load']})")
    if not args.skip_cold:
        with tempfile.TemporaryDirectory(prefix="studio-cold-") as home:
            load, cold = load1(), run_worker({"kind": "load"}, env={"STUDIO_HOME": home})
        out.update(cold_load_s=cold["seconds"], cold_load_load=load)
        say(f"  cold load {cold['seconds']:.1f} s (builds the fp32 cache; load {load})")
    return out


def verdicts(figures: dict[str, Any]) -> dict[str, bool | None]:
    """PASS (True) / FAIL (False) / not measured (None) for each target."""
    t, e, lat = figures.get("train"), figures.get("eval"), figures.get("latency")
    return {
        f"training >= {TARGETS['train_vs_trl']:g}x TRL defaults": t and t["ratio_vs_trl"] >= TARGETS["train_vs_trl"],
        f"training >= {TARGETS['train_vs_tutorial']:g}x tutorial Trainer":
            t and t["ratio_vs_tutorial"] >= TARGETS["train_vs_tutorial"],
        "final loss within 5% of TRL": t and t["loss_gap_vs_trl"] <= 0.05,
        f"batched eval >= {TARGETS['eval_vs_single']:g}x one at a time, identical":
            e and e["ratio_vs_single"] >= TARGETS["eval_vs_single"] and e["identical"] == e["prompts"],
        f"warm load < {TARGETS['warm_load_s']:g} s": lat and lat["warm_load_s"] < TARGETS["warm_load_s"],
        f"first loss point < {TARGETS['first_loss_s']:g} s after Train":
            lat and "first_loss_s" in lat and lat["first_loss_s"] < TARGETS["first_loss_s"],
        f"peak RSS of the default run < {TARGETS['peak_rss_gb']:g} GB":
            t and t["studio"]["peak_rss_gb"] < TARGETS["peak_rss_gb"],
        f"MFU > {TARGETS['mfu']:.0%} of the GEMM ceiling (aim)": t and t["studio"]["mfu"] > TARGETS["mfu"],
    }


def summarise_eval(raw: dict[str, Any]) -> dict[str, Any]:
    """Add the ratios to the eval worker's figures."""
    raw["ratio_vs_single"] = raw["studio"]["prompts_per_second"] / raw["single"]["prompts_per_second"]
    raw["ratio_vs_pipeline"] = raw["studio"]["prompts_per_second"] / raw["pipeline"]["prompts_per_second"]
    return raw


def run_bench(args: argparse.Namespace, say=print) -> dict[str, Any]:
    """The whole bench; returns every figure (the JSON line)."""
    from studio.model.embedded import embedded_cache_ready, ensure_embedded_cache

    if not embedded_cache_ready():
        say("Building the fp32 model cache (once, not timed) ...")
        ensure_embedded_cache()
    parts = set(args.only.split(","))
    figures: dict[str, Any] = {"config": {k: v for k, v in vars(args).items() if k != "command"},
                               "cpu_count": os.cpu_count(), "load_start": load1(), "started": time.time()}
    if "train" in parts:
        say(f"Training: {args.steps} steps, {args.examples or 'steps x batch'} examples, {args.repeats} round(s)")
        figures["train"] = summarise_training(bench_training(args, say))
    if "eval" in parts:
        say(f"Evaluation: {args.prompts} prompts, {args.repeats} round(s)")
        figures["eval"] = summarise_eval(run_worker({"kind": "eval", "prompts": args.prompts,
                                                     "repeats": args.repeats, "threads": args.threads}))
    if "latency" in parts:
        say("Latency")
        figures["latency"] = bench_latency(args, figures.get("train"), say)
    figures["load_end"] = load1()
    figures["verdicts"] = verdicts(figures)
    return figures


def format_table(figures: dict[str, Any]) -> str:
    """The figures as readable tables, then PASS/FAIL lines."""
    from bench.report import format_table as fmt

    return fmt(figures)


def build_parser() -> argparse.ArgumentParser:
    """Options of the bench (and of its `demo` sub-command)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "demo", "levers", "sweep"])
    parser.add_argument("candidates", nargs="*", help="sweep: candidates, each comma-separated SECTION.KEY=VALUE")
    parser.add_argument("--preset", default="cpu-demo", help="demo and sweep: the preset to start from")
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps per training contender (default 6)")
    parser.add_argument("--warmup", type=int, default=1, help="steps left out of the medians (default 1)")
    parser.add_argument("--examples", type=int, default=0,
                        help="training examples (default 0: steps x batch size, one pass over the same rows for all)")
    parser.add_argument("--prompts", type=int, default=16, help="held-out prompts to answer (default 16)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds of every contender (default 2)")
    parser.add_argument("--pad-to", type=int, default=256, help="the tutorial contender's fixed length (default 256)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=0, help="pin torch threads for all (0: each its own way)")
    parser.add_argument("--only", default="train,eval,latency", help="parts to run: train,eval,latency")
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold load (builds the cache, ~1-2 min)")
    parser.add_argument("--quick", action="store_true", help="3 steps, 8 prompts, 1 round, no cold load")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="demo overrides")
    parser.add_argument("--runs-dir", type=Path, default=None, help="demo: keep the run folder here")
    return parser


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo target: default settings, TrainingJob + compare_run, timed and scored."""
    from bench.demo import demo_table, demo_verdicts, run_demo
    from studio.presets import load_preset
    from studio.settings import apply_overrides, parse_assignments

    settings = apply_overrides(load_preset(args.preset), parse_assignments(args.set))
    figures = run_demo(settings, args.runs_dir)
    print(demo_table(figures), flush=True)
    figures["verdicts"] = demo_verdicts(figures)
    figures["overrides"] = args.set
    print(json.dumps(figures))
    return 0 if all(figures["verdicts"].values()) else 1


def cmd_levers(args: argparse.Namespace) -> int:
    """Each speed lever switched off in turn, interleaved with the default (training, then generation)."""
    from bench.levers import levers_command

    print(json.dumps(levers_command(args, run_worker, say=lambda line: print(line, flush=True)), default=float))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: the bench, the demo, or (internally) one worker measurement."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        print(RESULT + json.dumps(_worker(json.loads(argv[1]))), flush=True)
        return 0
    if argv[:1] == ["data"]:  # big files: load speed and memory (bench/data.py has its own options)
        from bench.data import main as data_main

        return data_main(argv[1:])
    if argv[:1] == ["probe"]:  # a sub-command with its own options
        from bench.probe import main as probe_main

        return probe_main(argv[1:])
    args = build_parser().parse_intermixed_args(argv)  # sweep candidates may follow --preset
    if args.command == "demo":
        return cmd_demo(args)
    if args.command == "levers":
        return cmd_levers(args)
    if args.command == "sweep":
        from bench.sweep import sweep_command

        sweep_command(args.preset, args.candidates, say=lambda line: print(line, flush=True))
        return 0
    if args.quick:
        args.steps, args.prompts, args.repeats, args.skip_cold = 3, 8, 1, True
    figures = run_bench(args, say=lambda line: print(line, flush=True))
    print(format_table(figures), flush=True)
    print(json.dumps(figures, default=float))
    return 0 if all(v is not False for v in figures["verdicts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
