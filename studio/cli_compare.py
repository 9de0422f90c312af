"""Command line, base vs tuned: `python -m studio compare` and the before/after summary that `train`, `demo` and
`compare` print (see `studio.cli` for the rest)."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio import cli_runs, runs
from studio.evaluate.comparison import Comparison
from studio.evaluate.lengths import LOOPING
from studio.publish import marks, scorecard
from studio.runs import RunFolder
from studio.settings import apply_overrides, parse_assignments


def add_parsers(sub: Any, add_runs_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    """The compare sub-command."""
    compare = sub.add_parser("compare", help="compare base vs tuned on a finished run's test split and write its report")
    compare.add_argument("run_id", help="a run id from `runs`")
    compare.add_argument("--set", action="append", default=[], metavar="generation.KEY=VALUE", help="override generation settings")
    compare.add_argument("--limit", type=int, default=0, help="compare on the first N test rows only (0 = all)")
    add_no_baseline(compare)
    add_runs_dir(compare)


def add_no_baseline(p: argparse.ArgumentParser) -> None:
    """`--no-baseline`: skip the prompt-only baseline (train, demo and compare)."""
    p.add_argument("--no-baseline", action="store_true", help="skip the prompt-only baseline (the base model with a "
                                                              "few training examples before each prompt)")


def compare_stoppable(rm: Any, gen: Any, limit: int) -> Comparison:
    """compare_run with progress lines; a first Ctrl-C stops after the current batch and keeps what is answered."""
    from studio.pipeline import compare_run, stopped_note

    with cli_runs.ctrl_c_stops("the comparison") as stop:
        result = compare_run(rm, gen, limit=limit, should_stop=stop.is_set,
                             progress=lambda which, done, total: print(f"  {which}: {done}/{total}", flush=True),
                             loss_progress=lambda which, done, total: print(
                                 f"  answer loss, {which}: {done}/{total}", flush=True))
    if result.partial:
        print(stopped_note(result, rm.run_dir), flush=True)
    return result


def summary_lines(result: Comparison) -> list[str]:
    """The before/after as terminal lines: the verdict, each metric with its interval, per-example tally, the cut."""
    lines = ["Before / after instruction tuning", f"  {scorecard.headline(result)}"]
    scored = scorecard.headline_comparison(result)  # without held-out rows that repeat a training prompt
    b, t = scored.base, scored.tuned
    metrics = scorecard.metric_lines(result)
    width = max(len(m.label) for m in metrics) + 2  # "Answer perplexity" is longer than the score metrics
    for m in metrics:
        exact = f"{round(b.exact_match * b.n)}/{b.n} -> {round(t.exact_match * t.n)}/{t.n}"
        counts = f"  ({exact} answers)" if m.key == "exact_match" else ""
        lines.append(f"  {m.label:{width}s}{m.before:>6} -> {m.after:>6}   {scorecard.change_text(m.change)}{counts}")
    if result.tally is not None:
        lines.append(f"  Per example: {scorecard.tally_text(result)}")
    if (loss := scored.answer_loss) is not None:
        lines.append(f"  Per example: {loss.better} better, {loss.same} the same, {loss.worse} worse by answer loss")
    cuts = [f"{c.cut}/{c.total} {who}" + (f" ({c.looped} {LOOPING})" if c.looped else "")
            for who in ("base", "tuned") if (c := result.cut_count(who)) is not None]
    if cuts:
        lines.append(f"  Cut at the length limit ({result.limit} tokens): {', '.join(cuts)} answers")
    if result.answer_length_reason:
        lines.append(f"  Answer length: {result.answer_length_reason}")
    if baseline := scorecard.baseline_sentence(result):
        lines.append(f"  {baseline}")
    return lines + [f"  {marks.cut_note(result)}"]


def print_summary(result: Comparison, train_seconds: float, total_seconds: float, run_dir: Path) -> None:
    """The summary lines, the time taken and the run folder with the files worth opening."""
    print("\n" + "\n".join(summary_lines(result)), flush=True)
    print(f"  {'time':12s}train {train_seconds:.0f} s, total {total_seconds:.0f} s")
    folder = RunFolder(run_dir)
    shown = (folder.report_html.name, folder.comparison_rows_file.name, f"{folder.adapter_dir.name}/")
    print(f"  {'run folder':12s}{run_dir}  ({', '.join(shown)})")


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare an existing run and write its report."""
    from studio.pipeline import open_run

    root = args.runs_dir or runs.runs_dir()
    rm = open_run(root, args.run_id, model_loader=args.model_loader)
    overrides = parse_assignments(args.set)
    if args.no_baseline:
        overrides.setdefault("generation", {})["baseline_shots"] = 0
    gen = apply_overrides(rm.settings, overrides).generation
    started = time.perf_counter()
    result = compare_stoppable(rm, gen, args.limit)
    print_summary(result, 0.0, time.perf_counter() - started, rm.run_dir)
    return 0


COMMANDS = {"compare": cmd_compare}
