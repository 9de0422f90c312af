"""`python -m bench`: the studio's speed and memory against the tutorial-style pipelines, on this machine.

Usage
    python -m bench                  # train + eval + latency + app + launch, 5 interleaved rounds: the longest here
    python -m bench --quick          # fewer steps/prompts, one round, no cold load, no app run: a smoke run
    python -m bench --rounds 3       # fewer rounds (the spread over 3 says less about the host than over 5)
    python -m bench --steps 8 --examples 64 --prompts 24 --rounds 7 --skip-cold
    python -m bench --only train     # or eval, latency, app, launch (comma-separated)
    python -m bench launch --steps 6 # only the launcher: 2 processes x 1 thread vs 1 x 2 (bench/launch.py)
    python -m bench --threads 1      # pin every contender to 1 torch thread (default: every available core)
    python -m bench --write-readme   # ... and rewrite the README's performance table from this run
    python -m bench demo             # the demo: default settings, train + compare (bench/demo.py)
    python -m bench demo --set train.learning_rate=1e-3   # the demo with overrides
    python -m bench levers           # switch each speed lever off in turn (bench/levers.py)
    python -m bench data             # big files: load seconds and peak RSS against the targets (bench/data.py)
    python -m bench probe            # the forgetting probe's cost and base accuracy (bench/probe.py, own options)
    python -m bench owndata          # your own long-answer file, every default: train + Compare (bench/owndata.py)
    python -m bench coldstart        # `python app.py` on an empty STUDIO_HOME to the first loss point (bench/coldstart.py)
    python -m bench app              # only the app-vs-command-line training time (bench/app.py)
    python -m bench sweep --preset cpu-demo "train.epochs=1.5" "train.learning_rate=7e-4,train.epochs=1.5"
                                     # candidates scored on validation rows only (bench/sweep.py)
    python -m bench demo --preset product-docs-cpu   # the docs-assistant demo, graded by key facts

Everything runs on the embedded Gemma 3 270M and the built-in word_tasks data (warm fp32 cache), with the same
examples, optimiser steps, LoRA adapter and initial LoRA weights, learning rate, seed and thread count for every
training contender (bench/train.py): (a) studio TrainingJob, (b) TRL SFTTrainer defaults, (c) a tutorial
transformers.Trainer padded to --pad-to, (a') the studio with the adaptive thread count, reported on its own line,
and (a'') the studio on TRL's random batch order, whose final loss must be within 2% of TRL's.
Every contender is pinned to --threads torch threads (0: every core this process may use). Each training run is a
fresh process (its own peak RSS). A shared host's speed drifts by more than the code changes, so --rounds rounds
(default 5) run every contender once each, the order reversed every other round; every ratio is taken inside a round
and every ratio and MFU is printed as min / median / max over the rounds (bench/rounds.py, bench/summary.py), the
targets judged on the medians (within a run, the medians over the steps after --warmup). Evaluation answers --prompts
held-out prompts with (a) studio batched generate, (b) one prompt at a time model.generate, (c)
pipeline("text-generation", num_beams=5), in the same rounds; (a) and (b) must agree token for token. MFU is model
FLOPs per second (formula in bench/flops.py) over the fp32 torch.matmul rate at the same thread count, measured at
the start of every round: each round's MFU is against its own round's ceiling. Latency covers model load, Train ->
first loss point and one question in the prompt box idle vs while training (bench/latency.py); app runs the
default run inside `python app.py` with a client polling like the Train tab, against the command line
(bench/app.py); launch trains the default run on two processes of one thread against one process of two threads,
round by round, and times Train -> first loss point with two processes (bench/launch.py). Every figure is printed next to the 1-minute load average; the last line is one JSON object with all
of them, the ratios and each target's PASS/FAIL.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.rounds import DEFAULT_ROUNDS, round_order  # noqa: E402
from bench.summary import summarise_eval, summarise_training, verdicts  # noqa: E402
from bench.workers import RESULT, run_worker, worker  # noqa: E402


def load1() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def measure_ceiling(threads: int, say) -> dict[str, Any]:
    """The GEMM ceiling now at the pinned thread count, with the load it was measured at."""
    from bench.flops import gemm_flops_per_second

    load = load1()
    rate = gemm_flops_per_second(threads=threads)
    say(f"  GEMM ceiling {rate / 1e9:.0f} GFLOP/s ({threads} thread(s), load {load})")
    return {"flops_per_second": rate, "threads": threads, "load": load}


def bench_training(args: argparse.Namespace, say, run=run_worker, ceiling=measure_ceiling) -> dict[str, Any]:
    """Every training contender once per round for `args.repeats` rounds, the order reversed every other round, the
    GEMM ceiling measured at the start of every round (each round's MFU is against its own ceiling)."""
    from bench.train import CONTENDERS

    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
    ceilings = []
    for round_ in range(args.repeats):
        ceilings.append(ceiling(args.threads, say))
        for name in round_order(CONTENDERS, round_):
            # Compare once: the first round's peak RSS covers train + compare; later rounds only need the training
            spec = {"kind": "train", "contender": name, "steps": args.steps, "examples": args.examples,
                    "seed": args.seed, "warmup": args.warmup, "pad_to": args.pad_to, "threads": args.threads,
                    "prompts": args.prompts, "compare": round_ == 0}
            result = run(spec)
            runs[name].append(result)
            say(f"  round {round_ + 1} {name:15s} {result['tokens_per_second']:7.1f} tokens/s  "
                f"{result['seconds_per_step']:6.2f} s/step  loss {result['final_loss']:.4f}  "
                f"threads {result['threads']:.0f}  init {result['initial_adapter']}  "
                f"load {result['load_start']}->{result['load_end']}")
    return {"runs": runs, "ceilings": ceilings, "pad_to": args.pad_to}


def app_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The app-vs-CLI run: the default settings at the bench's thread count, plus --set overrides."""
    from studio.settings import parse_assignments

    overrides = parse_assignments(args.set)
    overrides.setdefault("train", {}).setdefault("threads", args.threads)
    return overrides


def run_bench(args: argparse.Namespace, say=print) -> dict[str, Any]:
    """The whole bench; returns every figure (the JSON line)."""
    from bench.app import app_command
    from bench.latency import bench_latency
    from bench.launch import launch_rounds, summarise_launch
    from studio.model.embedded import embedded_cache_ready, ensure_embedded_cache

    if not embedded_cache_ready():
        say("Building the fp32 model cache (once, not timed) ...")
        ensure_embedded_cache()
    parts = set(args.only.split(","))
    figures: dict[str, Any] = {"config": {k: v for k, v in vars(args).items() if k != "command"},
                               "cpu_count": os.cpu_count(), "threads": args.threads, "load_start": load1(),
                               "started": time.time()}
    if "train" in parts:
        say(f"Training: {args.steps} steps, {args.examples or 'steps x batch'} examples, {args.repeats} round(s), "
            f"{args.threads} thread(s) pinned")
        figures["train"] = summarise_training(bench_training(args, say))
    if "eval" in parts:
        say(f"Evaluation: {args.prompts} prompts, {args.repeats} round(s)")
        figures["eval"] = summarise_eval(run_worker({"kind": "eval", "prompts": args.prompts,
                                                     "repeats": args.repeats, "threads": args.threads}))
    if "latency" in parts:
        say("Latency")
        first_loss = figures["train"]["studio"]["first_loss_seconds"] if "train" in figures else None
        figures["latency"] = bench_latency(run_worker, args.threads, max(args.repeats, 3), args.skip_cold,
                                           first_loss, say)
    if "app" in parts:
        say(f"App vs command line: the default run, {args.repeats} round(s) each")
        figures["app"] = app_command(args.repeats, app_overrides(args), run_worker, say)
    if "launch" in parts:
        say(f"Launcher: the default run on 2 processes x 1 thread vs 1 process x 2 threads, {args.repeats} round(s)")
        figures["launch"] = summarise_launch(launch_rounds(args.steps, 4, args.repeats, say))
    figures["load_end"] = load1()
    figures["verdicts"] = verdicts(figures)
    return figures


def build_parser() -> argparse.ArgumentParser:
    """Options of the bench (and of its `demo`, `levers` and `app` sub-commands)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "demo", "levers", "app", "sweep"])
    parser.add_argument("candidates", nargs="*", help="sweep: candidates, each comma-separated SECTION.KEY=VALUE")
    parser.add_argument("--preset", default="cpu-demo", help="demo and sweep: the preset to start from")
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps per training contender (default 6)")
    parser.add_argument("--warmup", type=int, default=1, help="steps left out of the medians (default 1)")
    parser.add_argument("--examples", type=int, default=0,
                        help="training examples (default 0: steps x batch size, one pass over the same rows for all)")
    parser.add_argument("--prompts", type=int, default=16, help="held-out prompts to answer (default 16)")
    parser.add_argument("--rounds", "--repeats", dest="repeats", type=int, default=None, metavar="N",
                        help=f"interleaved rounds of every contender (default {DEFAULT_ROUNDS}; --quick 1; levers 2)")
    parser.add_argument("--pad-to", type=int, default=256, help="the tutorial contender's fixed length (default 256)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads pinned for every contender (default 0: every core this process may use)")
    parser.add_argument("--only", default="train,eval,latency,app,launch",
                        help="parts to run: train,eval,latency,app,launch")
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold load (builds the cache, ~1-2 min)")
    parser.add_argument("--quick", action="store_true",
                        help="3 steps, 8 prompts, 1 round (unless --rounds), no cold load, no app")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="settings overrides (demo, app)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="demo: keep the run folder here")
    parser.add_argument("--demo-runs", type=int, default=2,
                        help="demo: run it this many times from scratch and check the numbers repeat (default 2)")
    parser.add_argument("--write-readme", action="store_true",
                        help="rewrite this command's block of README.md from the figures just measured")
    return parser


def default_rounds(args: argparse.Namespace) -> int:
    """--rounds as given, else one for --quick, two for the levers (their own table) and DEFAULT_ROUNDS otherwise."""
    if args.repeats is not None:
        return args.repeats
    return 1 if args.quick else 2 if args.command == "levers" else DEFAULT_ROUNDS


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo targets: a preset's settings, TrainingJob + compare_run, timed, scored and repeated."""
    from bench.demo import DOCS_DATASET, demo_table, demo_verdicts, run_demos
    from bench.readme import demo_block, machine_facts, write_block
    from studio.model.threads import thread_policy
    from studio.presets import load_preset
    from studio.settings import apply_overrides, parse_assignments

    settings = apply_overrides(load_preset(args.preset), parse_assignments(args.set))
    figures = run_demos(settings, args.demo_runs, args.runs_dir)
    figures.update(preset=args.preset, overrides=args.set)
    print(demo_table(figures), flush=True)
    figures["verdicts"] = demo_verdicts(figures)
    if args.write_readme:
        block = "demo-docs" if settings.data.dataset == DOCS_DATASET else "demo"
        machine = machine_facts(thread_policy(settings.train).threads)
        print(f"Wrote {write_block(block, demo_block(figures, machine))}")
    print(json.dumps(figures))
    return 0 if all(figures["verdicts"].values()) else 1


def cmd_levers(args: argparse.Namespace) -> int:
    """Each speed lever switched off in turn, interleaved with the default (training, then generation)."""
    from bench.levers import levers_command
    from bench.readme import levers_block, machine_facts, write_block

    start = load1()
    out = levers_command(args, run_worker, say=lambda line: print(line, flush=True))
    out.update(load_start=start, load_end=load1())
    if args.write_readme:
        print(f"Wrote {write_block('levers', levers_block(out, machine_facts(args.threads)))}")
    print(json.dumps(out, default=float))
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    """Only the app-vs-command-line training time."""
    from bench.app import app_command, app_table

    out = app_command(args.repeats, app_overrides(args), run_worker, say=lambda line: print(line, flush=True))
    print("\n".join(app_table(out)), flush=True)
    print(json.dumps(out, default=float))
    return 0 if out["pass"] else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    """Candidate settings scored on the preset's validation rows only (bench/sweep.py)."""
    from bench.sweep import sweep_command

    sweep_command(args.preset, args.candidates, say=lambda line: print(line, flush=True))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """The whole bench, its tables, and (with --write-readme) the README's performance table."""
    from bench.readme import machine_facts, performance_block, write_block
    from bench.report import format_table

    if args.quick:
        args.steps, args.prompts, args.skip_cold = 3, 8, True
        args.only = ",".join(p for p in args.only.split(",") if p != "app")
    figures = run_bench(args, say=lambda line: print(line, flush=True))
    print(format_table(figures), flush=True)
    if args.write_readme:
        print(f"Wrote {write_block('performance', performance_block(figures, machine_facts(args.threads)))}")
    print(json.dumps(figures, default=float))
    return 0 if all(v is not False for v in figures["verdicts"].values()) else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point: the bench, the demo, the levers, the app line, or (internally) one worker measurement."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        print(RESULT + json.dumps(worker(json.loads(argv[1]))), flush=True)
        return 0
    own = {"data": "bench.data", "probe": "bench.probe", "coldstart": "bench.coldstart", "launch": "bench.launch",
           "gpu": "bench.gpu", "owndata": "bench.owndata"}
    if argv[:1] and argv[0] in own:  # sub-commands with their own options
        import importlib

        return importlib.import_module(own[argv[0]]).main(argv[1:])
    args = build_parser().parse_intermixed_args(argv)  # sweep candidates may follow --preset
    args.repeats = default_rounds(args)
    if not args.threads:
        from studio.model.threads import available_cores

        args.threads = available_cores()  # one number, resolved once, for every contender and worker
    commands = {"demo": cmd_demo, "levers": cmd_levers, "app": cmd_app, "sweep": cmd_sweep, "bench": cmd_bench}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
