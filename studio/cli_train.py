"""Command line, training: `python -m studio train`, `demo` and `warmup`, the settings a run is made of (preset,
flags, the data's template) and the time budget that sizes a run on your own data (see `studio.cli` for the rest)."""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio import cli_runs, runs
from studio.cli_compare import add_no_baseline, compare_stoppable, print_summary, summary_lines
from studio.cli_data import MAP_HELP, column_map
from studio.errors import StudioError
from studio.presets import DEFAULT_PRESET, load_preset, read_preset
from studio.runs import RunFolder
from studio.settings import StudioSettings, apply_overrides, parse_assignments

TRAIN_BUDGET_MINUTES = 10.0  # train + Compare on your own data (`python -m bench owndata` measures it)


def add_parsers(sub: Any, add_runs_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    """The train, demo and warmup sub-commands."""
    train = sub.add_parser("train", help="load data -> split -> train LoRA -> compare base vs tuned -> report")
    _add_run_args(train, add_runs_dir)
    train.add_argument("--no-compare", action="store_true", help="stop after training (skip the before/after comparison)")
    train.add_argument("--budget-minutes", type=float, default=TRAIN_BUDGET_MINUTES, metavar="M",
                       help=f"with your own --data: train on a seeded subset when every row would not fit train + "
                            f"Compare into M minutes at this machine's speed, saying so in one line (default "
                            f"{TRAIN_BUDGET_MINUTES:g}; 0 or less trains on every row). Built-in samples, and runs whose preset "
                            "or --set chooses data.max_examples or train.max_steps, keep their own size")
    cli_runs.add_origin_args(train)
    demo = sub.add_parser("demo", help="the one-click before/after: train, compare, then the verdict and the three "
                                       "examples tuning helped most")
    _add_run_args(demo, add_runs_dir)
    sub.add_parser("warmup", help="prepare the embedded model's fp32 cache now (once per machine), printing its phases")


def _add_run_args(p: argparse.ArgumentParser, add_runs_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    """What a run is made of: data, preset, model, template, overrides, column mapping, token, runs folder."""
    p.add_argument("--data", help="a file (JSON/JSONL/CSV/TSV/Parquet, also .gz/.bz2/.xz/.zst or a one-file .zip), sample:NAME, "
                                  "or a Hub dataset id (default: the preset's, sample:word_tasks)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"a preset from presets/ (default {DEFAULT_PRESET}; see `presets`)")
    p.add_argument("--model", help="embedded:gemma-3-270m (default), a causal-LM Hub id, or a local folder")
    p.add_argument("--template", help="prompt template name (chat, alpaca, instruction_output, question_answer, phi3, chatml, tokenizer, custom; default: the preset's if it sets one, else the one the data suits, a sample's own or chat for chat data)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any setting, e.g. train.learning_rate=1e-4 (repeatable; sections: data, model, lora, train, generation)")
    p.add_argument("--map", action="append", default=[], metavar="ROLE=COLUMN", help=MAP_HELP)
    p.add_argument("--token", help="Hugging Face token for gated models/datasets (never written to disk)")
    add_no_baseline(p)
    add_runs_dir(p)


def settings_from_args(args: argparse.Namespace) -> StudioSettings:
    """Preset, then --data/--model/--template/--map, then --set overrides."""
    settings = load_preset(args.preset)
    direct: dict[str, dict] = {}
    if args.data:
        direct.setdefault("data", {})["dataset"] = args.data
    if args.template:
        direct.setdefault("data", {})["template"] = args.template
    if args.map:
        direct.setdefault("data", {})["column_map"] = column_map(args.map)
    if args.model:
        direct.setdefault("model", {})["model"] = args.model
    if getattr(args, "no_baseline", False):
        direct.setdefault("generation", {})["baseline_shots"] = 0
    settings = apply_overrides(settings, direct)
    return apply_overrides(settings, parse_assignments(args.set))


def _template_chosen(args: argparse.Namespace) -> bool:
    """True when --template, --set data.template=... or the preset chose the template (the data's then never does)."""
    return bool(args.template or any(pair.strip().startswith("data.template=") for pair in args.set)
                or "template" in (read_preset(args.preset).get("data") or {}))


def _with_data_template(settings: StudioSettings, args: argparse.Namespace) -> StudioSettings:
    """The template the data recommends (a sample's own, chat for chat-shaped files), by `choose_template`'s rule."""
    from studio.data.dataset import recommended_template
    from studio.data.templates import choose_template

    current = settings.data.template
    template = choose_template(current, recommended_template(settings.data.dataset), _template_chosen(args))
    if template == current:
        return settings
    print("Chat-shaped data: training every assistant turn with the chat template (--template picks another)."
          if template == "chat" else f"Using the '{template}' template this data suits (--template picks another).")
    return apply_overrides(settings, {"data": {"template": template}})


def _size_chosen(args: argparse.Namespace) -> bool:
    """True when --set or the preset chose data.max_examples or train.max_steps (the budget then never does)."""
    keys = ("data.max_examples=", "train.max_steps=")
    preset = read_preset(args.preset)
    return bool(any(pair.strip().startswith(keys) for pair in args.set) or "max_examples" in (preset.get("data") or {})
                or "max_steps" in (preset.get("train") or {}))


def _within_budget(settings: StudioSettings, args: argparse.Namespace, root: Path) -> StudioSettings:
    """Your own data on a subset that fits --budget-minutes (train + Compare), said in one line; else as it is."""
    from studio.model.budget import budget_choice, training_speed
    from studio.model.loading import load_tokenizer

    if (args.budget_minutes <= 0 or settings.data.dataset.startswith("sample:") or _size_chosen(args)
            or settings.train.max_steps):
        return settings
    loader = args.model_loader
    if loader is None:
        prepare_embedded(settings.model.model)  # the speed estimate reads the model's config from its cache
    try:
        # An injected loader replaces the model: only a speed measured on this machine describes it.
        speed = training_speed(root, settings.model.model, estimate=loader is None)
        tokenizer = (loader(settings.model, token=args.token).tokenizer if loader and speed
                     else load_tokenizer(settings.model, args.token) if speed else None)
        choice = budget_choice(settings, args.budget_minutes, tokenizer, speed)
    except StudioError:
        return settings  # the job itself reports what is wrong with the data or the model, as it always has
    if choice.line:
        print(choice.line, flush=True)
    if choice.max_examples is None:
        return settings
    return apply_overrides(settings, {"data": {"max_examples": choice.max_examples}})


def _print_progress(job, printed: int) -> int:
    logs = job.logs()
    for line in logs[printed:]:
        print(line, flush=True)
    return len(logs)


def _follow(job: Any, stopping: str) -> None:
    """Start a job (or demo) and print its log until it ends; Ctrl-C stops it, keeping what it finished."""
    job.start()
    printed = 0
    try:
        while not job.join(timeout=1.0):
            printed = _print_progress(job, printed)
    except KeyboardInterrupt:
        print(stopping, flush=True)
        job.stop()
        job.join()
    _print_progress(job, printed)  # the job logs its closing message (what was saved, or why it failed)


def cmd_train(args: argparse.Namespace) -> int:
    """Train in the foreground, printing the job's log, then compare and report."""
    from studio.pipeline import from_job

    root = args.runs_dir or runs.runs_dir()
    started = time.perf_counter()
    job = cli_runs.training_job(args, root, lambda: _within_budget(
        _with_data_template(settings_from_args(args), args), args, root))
    settings = job.settings
    if args.model_loader is None:
        prepare_embedded(settings.model.model)
    _follow(job, "Stopping: saving the adapter trained so far ...")
    train_seconds = time.perf_counter() - started
    if job.error:
        print(f"error: {job.error}", file=sys.stderr)
    if job.status != "completed" or args.no_compare:
        return 0 if job.status in ("completed", "stopped") else 1
    rm = from_job(job)
    print(f"Comparing base vs tuned on {min(len(rm.test), settings.data.max_test_examples or len(rm.test))} held-out examples ...", flush=True)
    result = compare_stoppable(rm, None, settings.data.max_test_examples)
    print_summary(result, train_seconds, time.perf_counter() - started, rm.run_dir)
    return 0


def prepare_embedded(model: str) -> None:
    """Build the embedded model's cache in the foreground, printing each phase, when this run needs it first."""
    from studio.model.cache_progress import EXPECTED_SECONDS, PHASES
    from studio.model.embedded import embedded_cache_ready, ensure_embedded_cache
    from studio.model.threads import on_own_thread
    from studio.settings import EMBEDDED_MODEL

    if model.strip() != EMBEDDED_MODEL or embedded_cache_ready():
        return
    print(f"Preparing the embedded model (first start only, about {EXPECTED_SECONDS:.0f} s on 2 cores) ...", flush=True)
    labels, started = {phase.key: phase.label for phase in PHASES}, time.perf_counter()
    # Its own thread: the build's OpenMP workers must not outlive it beside the training thread (threads.py).
    on_own_thread(ensure_embedded_cache, on_phase=lambda key: print(
        f"  {time.perf_counter() - started:4.0f} s  {labels[key]}", flush=True))
    print(f"The embedded model is ready ({time.perf_counter() - started:.0f} s).", flush=True)


def cmd_warmup(_: argparse.Namespace) -> int:
    """Prepare the embedded model's cache (a no-op when it is there)."""
    from studio.model.embedded import embedded_cache_dir, embedded_cache_ready

    if embedded_cache_ready():
        print(f"The embedded model is already prepared in {embedded_cache_dir()}.")
        return 0
    prepare_embedded(StudioSettings().model.model)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The one-click before/after: train, compare, then the verdict, the three best examples and the report."""
    from studio.demo import demo_job, example_lines, examples_heading

    settings = _with_data_template(settings_from_args(args), args)
    if args.model_loader is None:
        prepare_embedded(settings.model.model)
    started = time.perf_counter()
    demo = demo_job(settings, args.runs_dir or runs.runs_dir(), token=args.token, model_loader=args.model_loader)
    _follow(demo, "Stopping: keeping what is finished ...")
    if demo.comparison is None:
        if demo.error:
            print(f"error: {demo.error}", file=sys.stderr)
        return 0 if demo.status == "stopped" else 1
    print("\n" + "\n".join(summary_lines(demo.comparison)), flush=True)
    print(f"\n{examples_heading(demo.comparison)}:\n" + "\n".join(example_lines(demo.comparison)))
    print(f"\n  {'time':12s}total {time.perf_counter() - started:.0f} s")
    print(f"  {'report':12s}{RunFolder(demo.run_dir).report_html}")
    return 0


COMMANDS = {"train": cmd_train, "demo": cmd_demo, "warmup": cmd_warmup}
