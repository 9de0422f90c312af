"""Command line: `python -m studio train|compare|probe|inspect|runs|presets` over the same library the UI uses."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from studio import runs
from studio.errors import StudioError
from studio.presets import DEFAULT_PRESET, list_presets, load_preset, preset_description
from studio.runs import RunFolder
from studio.settings import StudioSettings, apply_overrides, parse_assignments

EPILOG = """examples:
  python -m studio train                                  # embedded Gemma 3 270M on sample:word_tasks, preset cpu-demo
  python -m studio train --data my.jsonl --set train.epochs=2 --set lora.r=8
  python -m studio train --preset codealpaca-gptneo --model EleutherAI/gpt-neo-125m   # needs the Hub
  python -m studio inspect my.csv --map instruction=question --map output=reply
  python -m studio compare 20261121-101500-a1b2c3
  python -m studio probe 20261121-101500-a1b2c3             # did tuning break anything? (needs lm-eval)
  python -m studio export 20261121-101500-a1b2c3 --merged
  HF_TOKEN=hf_... python -m studio push 20261121-101500-a1b2c3 --repo me/my-adapter
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per step."""
    parser = argparse.ArgumentParser(prog="python -m studio", description="Instruction-tune a causal LM with LoRA and compare before/after.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="load data -> split -> train LoRA -> compare base vs tuned -> report")
    train.add_argument("--data", help="a file (JSON/JSONL/CSV/Parquet), sample:NAME, or a Hub dataset id (default: the preset's, sample:word_tasks)")
    train.add_argument("--preset", default=DEFAULT_PRESET, help=f"a preset from presets/ (default {DEFAULT_PRESET}; see `presets`)")
    train.add_argument("--model", help="embedded:gemma-3-270m (default), a causal-LM Hub id, or a local folder")
    train.add_argument("--template", help="prompt template name (alpaca, instruction_output, question_answer, phi3, chatml, tokenizer, custom)")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override any setting, e.g. train.learning_rate=1e-4 (repeatable; sections: data, model, lora, train, generation)")
    train.add_argument("--map", action="append", default=[], metavar="ROLE=COLUMN", help="map a column to instruction/input/output/system (repeatable)")
    train.add_argument("--no-compare", action="store_true", help="stop after training (skip the before/after comparison)")
    train.add_argument("--token", help="Hugging Face token for gated models/datasets (never written to disk)")
    _add_runs_dir(train)

    compare = sub.add_parser("compare", help="compare base vs tuned on a finished run's test split and write its report")
    compare.add_argument("run_id", help="a run id from `runs`")
    compare.add_argument("--set", action="append", default=[], metavar="generation.KEY=VALUE", help="override generation settings")
    compare.add_argument("--limit", type=int, default=0, help="compare on the first N test rows only (0 = all)")
    _add_runs_dir(compare)

    probe = sub.add_parser("probe", help="did tuning break anything? base vs tuned on multiple-choice tasks (lm-eval)")
    probe.add_argument("run_id", help="a run id from `runs`")
    probe.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                       help="lm-eval task names (default: the built-in offline probe, studio_probe; others such as "
                            "arc_easy or hellaswag need the Hugging Face Hub)")
    probe.add_argument("--batch-size", type=int, default=None, help="rows per forward pass (default 16)")
    _add_runs_dir(probe)

    inspect = sub.add_parser("inspect", help="show a dataset's detected shape, row count and one rendered example")
    inspect.add_argument("path", help="a file, sample:NAME, or a Hub dataset id")
    inspect.add_argument("--map", action="append", default=[], metavar="ROLE=COLUMN", help="explicit column mapping (repeatable)")
    inspect.add_argument("--template", default=StudioSettings().data.template, help="template used to render the example")

    export = sub.add_parser("export", help="export a run: the adapter as a zip, or the merged model (LoRA folded in)")
    export.add_argument("run_id", help="a run id from `runs`")
    export.add_argument("--merged", action="store_true", help="write the merged full model (safetensors + tokenizer) instead of the adapter zip")
    _add_runs_dir(export)

    push = sub.add_parser("push", help="push a run's adapter or merged model to the Hugging Face Hub (token from $HF_TOKEN)")
    push.add_argument("run_id", help="a run id from `runs`")
    push.add_argument("--repo", required=True, help="the target repository, owner/name")
    push.add_argument("--what", choices=["adapter", "merged"], default="adapter", help="what to push (default adapter)")
    push.add_argument("--public", action="store_true", help="create the repository public (default private)")
    _add_runs_dir(push)

    sub.add_parser("presets", help="list the presets with their descriptions")
    listing = sub.add_parser("runs", help="list past runs")
    _add_runs_dir(listing)
    return parser


def _add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", type=Path, default=None, help="where run folders live (default $STUDIO_RUNS_DIR or ./runs)")


def _column_map(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        role, sep, column = pair.partition("=")
        if not sep or not role.strip() or not column.strip():
            raise StudioError(f"Expected ROLE=COLUMN for --map, got {pair!r}.")
        out[role.strip()] = column.strip()
    return out


def settings_from_args(args: argparse.Namespace) -> StudioSettings:
    """Preset, then --data/--model/--template/--map, then --set overrides."""
    settings = load_preset(args.preset)
    direct: dict[str, dict] = {}
    if args.data:
        direct.setdefault("data", {})["dataset"] = args.data
    if args.template:
        direct.setdefault("data", {})["template"] = args.template
    if args.map:
        direct.setdefault("data", {})["column_map"] = _column_map(args.map)
    if args.model:
        direct.setdefault("model", {})["model"] = args.model
    settings = apply_overrides(settings, direct)
    return apply_overrides(settings, parse_assignments(args.set))


def _print_progress(job, printed: int) -> int:
    logs = job.logs()
    for line in logs[printed:]:
        print(line, flush=True)
    return len(logs)


def cmd_train(args: argparse.Namespace) -> int:
    """Train in the foreground, printing the job's log, then compare and report."""
    from studio.jobs import TrainingJob
    from studio.pipeline import compare_run, from_job

    settings = settings_from_args(args)
    root = args.runs_dir or runs.runs_dir()
    started = time.perf_counter()
    job = TrainingJob(settings, root, token=args.token, model_loader=args.model_loader)
    job.start()
    printed = 0
    try:
        while not job.join(timeout=1.0):
            printed = _print_progress(job, printed)
    except KeyboardInterrupt:
        print("Stopping: saving the adapter trained so far ...", flush=True)
        job.stop()
        job.join()
    _print_progress(job, printed)  # the job logs its closing message (what was saved, or why it failed)
    train_seconds = time.perf_counter() - started
    if job.error:
        print(f"error: {job.error}", file=sys.stderr)
    if job.status != "completed" or args.no_compare:
        return 0 if job.status in ("completed", "stopped") else 1
    rm = from_job(job)
    print(f"Comparing base vs tuned on {min(len(rm.test), settings.data.max_test_examples or len(rm.test))} held-out examples ...", flush=True)
    result = compare_run(rm, limit=settings.data.max_test_examples,
                         progress=lambda which, done, total: print(f"  {which}: {done}/{total}", flush=True))
    _print_summary(result, train_seconds, time.perf_counter() - started, rm.run_dir)
    return 0


def _print_summary(result, train_seconds: float, total_seconds: float, run_dir: Path) -> None:
    b, t = result.base, result.tuned
    print("\nBefore / after instruction tuning", flush=True)
    print(f"  corpus BLEU   {b.bleu:6.1f} -> {t.bleu:6.1f}  ({t.bleu - b.bleu:+.1f})")
    print(f"  chrF          {b.chrf:6.1f} -> {t.chrf:6.1f}")
    print(f"  exact match   {b.exact_match * b.n:4.0f}/{b.n} -> {t.exact_match * t.n:.0f}/{t.n}")
    print(f"  time          train {train_seconds:.0f} s, total {total_seconds:.0f} s")
    folder = RunFolder(run_dir)
    shown = (folder.report_html.name, folder.comparison_rows_file.name, f"{folder.adapter_dir.name}/")
    print(f"  run folder    {run_dir}  ({', '.join(shown)})")


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare an existing run and write its report."""
    from studio.pipeline import compare_run, open_run

    root = args.runs_dir or runs.runs_dir()
    rm = open_run(root, args.run_id, model_loader=args.model_loader)
    gen = apply_overrides(rm.settings, parse_assignments(args.set)).generation
    started = time.perf_counter()
    result = compare_run(rm, gen, limit=args.limit, progress=lambda w, d, n: print(f"  {w}: {d}/{n}", flush=True))
    _print_summary(result, 0.0, time.perf_counter() - started, rm.run_dir)
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Score base vs tuned on the probe, print the table and the sentence; the last line is the headline."""
    from studio.evaluate.probe import check_tasks, parse_tasks
    from studio.evaluate.probe_record import ProbeStopped
    from studio.pipeline import open_run, probe_run
    from studio.publish.probe_view import probe_text

    tasks = parse_tasks(args.tasks)
    check_tasks(tasks)  # lm-eval missing or the Hub unreachable: say so before loading a model
    rm = open_run(args.runs_dir or runs.runs_dir(), args.run_id, model_loader=args.model_loader)
    print(f"Probing run {rm.run_id}: {', '.join(tasks)} (Ctrl-C stops; nothing is saved then) ...", flush=True)
    shown: set[tuple[str, int]] = set()

    def progress(which: str, done: int, total: int) -> None:
        quarter = 4 * done // total  # a line per quarter, not one per batch
        if (which, quarter) not in shown:
            shown.add((which, quarter))
            print(f"  {which}: {done}/{total} rows", flush=True)

    try:
        result = probe_run(rm, tasks, args.batch_size, progress=progress)
    except (KeyboardInterrupt, ProbeStopped):
        print("Stopped: the probe was interrupted and nothing was saved.", file=sys.stderr)
        return 130
    print("", *probe_text(result), f"saved to {RunFolder(rm.run_dir).probe_file}", result.last_line, sep="\n")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the detected shape, the row count and one rendered example."""
    from studio.data.dataset import load_source
    from studio.data.templates import get_template

    loaded = load_source(args.path, column_map=_column_map(args.map) or None)
    template = get_template(args.template, custom=StudioSettings().data.custom_template)
    print(f"source:  {loaded.source}")
    print(f"shape:   {loaded.shape.name} ({loaded.shape.reason})")
    print(f"columns: {', '.join(loaded.columns)}")
    print(f"rows:    {len(loaded.examples)} usable of {loaded.n_rows}" + (f" (+{len(loaded.fixed_test)} fixed test rows)" if loaded.fixed_test else ""))
    rendered = template.render(loaded.examples[0])
    print(f"\nexample 1 rendered with template '{template.name}' (prompt is masked, completion is trained):")
    print("----- prompt -----")
    print(rendered.prompt)
    print("----- completion -----")
    print(rendered.completion)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the adapter zip or the merged model of a run."""
    from studio.publish import export

    info = runs.read_run(args.runs_dir or runs.runs_dir(), args.run_id)
    path = export.merge_adapter(info.path, base_loader=args.model_loader) if args.merged else export.zip_adapter(info.path)
    print(f"Exported {'the merged model' if args.merged else 'the adapter'} to {path}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Push a run to the Hub with the token from $HF_TOKEN (never written anywhere)."""
    import os

    from studio.publish import export

    info = runs.read_run(args.runs_dir or runs.runs_dir(), args.run_id)
    url = export.push_to_hub(info.path, args.repo, os.environ.get("HF_TOKEN"), what=args.what, private=not args.public,
                             base_loader=args.model_loader)
    print(f"Pushed the {args.what} of run {args.run_id} to {url}")
    return 0


def cmd_presets(_: argparse.Namespace) -> int:
    """List presets."""
    for name in list_presets():
        print(f"{name:24s} {preset_description(name)}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs, newest first."""
    for r in runs.list_runs(args.runs_dir or runs.runs_dir()):
        bleu = f"BLEU {r.bleu_base:.1f} -> {r.bleu_tuned:.1f}" if r.bleu_tuned is not None else ""
        loss = f"loss {r.final_loss:.3f}" if r.final_loss is not None else ""
        print(f"{r.run_id}  {r.status:11s} {r.base_model:28s} {r.dataset:24s} {loss:12s} {bleu}")
    return 0


COMMANDS = {"train": cmd_train, "compare": cmd_compare, "probe": cmd_probe, "inspect": cmd_inspect,
            "export": cmd_export, "push": cmd_push, "presets": cmd_presets, "runs": cmd_runs}


def main(argv: list[str] | None = None, model_loader: Any = None) -> int:
    """Entry point; a StudioError prints one line and exits with status 2.

    `model_loader(model_settings, token=None) -> LoadedModel` replaces the real base-model loader (tests inject a
    tiny model through it).
    """
    args = build_parser().parse_args(argv)
    args.model_loader = model_loader
    try:
        return COMMANDS[args.command](args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
