"""The command line for runs that already exist: resume or train more, Ctrl-C that stops after the current batch,
the snapshot timeline (`python -m studio snapshots`) and two runs side by side (`python -m studio diff`)."""
from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from studio import runs
from studio.errors import RunError, StudioError
from studio.evaluate.comparison import load_comparison
from studio.settings import StudioSettings, apply_overrides, parse_assignments


def add_origin_args(train: argparse.ArgumentParser) -> None:
    """`train --resume RUN_ID` and `train --continue RUN_ID` (one or the other)."""
    group = train.add_mutually_exclusive_group()
    group.add_argument("--resume", metavar="RUN_ID", help="finish a stopped, interrupted or failed run from its last "
                       "checkpoint (its own settings, folder and loss curve)")
    group.add_argument("--continue", dest="continue_run", metavar="RUN_ID", help="train a completed run more: a new "
                       "run from its adapter and optimizer state that records its parent (--set train.epochs=N or "
                       "train.max_steps=N for how much more)")


def _refuse(args: argparse.Namespace, flag: str, allow_set: bool) -> None:
    given = [name for name in ("data", "model", "template", "map") if getattr(args, name)]
    if args.set and not allow_set:
        given.append("set")
    if given:
        keeps = "its own settings" if flag == "--resume" else "the parent's data, model and template"
        raise StudioError(f"{flag} keeps {keeps}, so --{given[0]} cannot be combined with it.")


def training_job(args: argparse.Namespace, root: Path, new_settings: Callable[[], StudioSettings]) -> Any:
    """The TrainingJob `train` runs: a new run, a resumed one (--resume) or a continuation (--continue)."""
    from studio.jobs import TrainingJob
    from studio.train.continuation import continue_settings
    from studio.train.launch import check_machine  # before starting: processes this machine lacks, one sentence

    common = {"token": args.token, "model_loader": args.model_loader}
    # Whoever runs the command line owns every run on this machine (as `export` does): act as the run's owner.
    if args.resume:
        _refuse(args, "--resume", allow_set=False)
        info = runs.read_run(root, args.resume)
        check_machine(info.folder.read_settings().train)
        return TrainingJob(StudioSettings(), root, owner=info.owner, resume_run=args.resume, **common)
    if args.continue_run:
        _refuse(args, "--continue", allow_set=True)
        parent = runs.read_run(root, args.continue_run)
        settings = continue_settings(parent.folder.read_settings(), parse_assignments(args.set))
        check_machine(settings.train)
        print(f"Training run {args.continue_run} more as a new run (its adapter and optimizer state carry over).",
              flush=True)
        return TrainingJob(settings, root, owner=parent.owner, continue_run=args.continue_run, **common)
    settings = new_settings()
    check_machine(settings.train)
    return TrainingJob(settings, root, **common)


@contextlib.contextmanager
def ctrl_c_stops(what: str) -> Iterator[threading.Event]:
    """While inside: a first Ctrl-C sets the event (stop after the current batch), a second one interrupts."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield stop
        return

    def on_ctrl_c(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(f"\nStopping {what} after the current batch; what is answered is kept (Ctrl-C again to abort) ...",
              flush=True)

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def add_parsers(sub: Any, add_runs_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    """The `snapshots` and `diff` sub-commands."""
    snaps = sub.add_parser("snapshots", help="score a run's adapter snapshots step by step (watch it learn); choose "
                           "the best by validation score as its adapter, or restore the final one")
    snaps.add_argument("run_id", help="a run id from `runs`")
    snaps.add_argument("--choose", choices=["validation_bleu", "eval_loss"], help="make the best snapshot by this "
                       "validation criterion the run's adapter (never by test scores)")
    snaps.add_argument("--restore", action="store_true", help="make the run's final adapter its adapter again")
    snaps.add_argument("--set", action="append", default=[], metavar="generation.KEY=VALUE",
                       help="override generation settings")
    add_runs_dir(snaps)
    diff = sub.add_parser("diff", help="two runs side by side: held-out scores with the difference, and the "
                          "settings that differ")
    diff.add_argument("run_a", help="the first run id")
    diff.add_argument("run_b", help="the second run id")
    add_runs_dir(diff)


def cmd_snapshots(args: argparse.Namespace) -> int:
    """Score every snapshot (or choose / restore the adapter) and print the timeline."""
    from studio import pipeline
    from studio.evaluate.timeline import choice_note, load_timeline

    root = args.runs_dir or runs.runs_dir()
    info = runs.read_run(root, args.run_id)
    if args.restore:
        pipeline.restore_final(root, args.run_id, owner=info.owner)
        print(f"Run {args.run_id} uses its final adapter again.")
        return 0
    timeline = load_timeline(info.path) if args.choose else None
    if timeline is None:
        rm = pipeline.open_run(root, args.run_id, model_loader=args.model_loader)
        gen = apply_overrides(rm.settings, parse_assignments(args.set)).generation
        with ctrl_c_stops("scoring the snapshots") as stop:
            timeline = pipeline.score_snapshots_run(rm, gen, progress=_timeline_progress, should_stop=stop.is_set)
    print("\n".join(timeline_lines(timeline)))
    if args.choose:
        point = pipeline.choose_snapshot(root, args.run_id, owner=info.owner, criterion=args.choose)
        print(f"Run {args.run_id} now uses the step-{point.step} snapshot as its adapter (the final adapter is kept; "
              "`snapshots --restore` brings it back). Compare again to score it on the test split.")
    else:
        print(choice_note(timeline))
    return 0


def _timeline_progress(done: int, total: int, step: int) -> None:
    if done < total:
        print(f"  scoring {'the base model' if step == 0 else f'step {step}'} ({done + 1}/{total})", flush=True)


def timeline_lines(timeline: Any, examples: int = 2) -> list[str]:
    """The timeline as terminal lines: scores per step, then a few examples' answers step by step."""
    has_val = bool(timeline.n_validation)
    lines = [f"Watch it learn: {len(timeline.examples)} held-out examples, {len(timeline.snapshots)} snapshots"
             + (f", {timeline.n_validation} validation rows" if has_val else ""),
             f"  {'step':>6}  {'test BLEU':>9}  {'valid. BLEU':>11}  {'eval loss':>9}"]
    for p in timeline.points:
        val = f"{p.validation.bleu:.1f}" if p.validation else "-"
        loss = f"{p.eval_loss:.4g}" if p.eval_loss is not None else "-"
        note = "  (base model)" if p.step == 0 else "  (in use)" if p.step == timeline.chosen_step else ""
        lines.append(f"  {p.step:>6}  {p.test.bleu:>9.1f}  {val:>11}  {loss:>9}{note}")
    if timeline.partial:
        lines.append(f"  Stopped after {len(timeline.points)} of {timeline.planned} points.")
    for i, row in enumerate(timeline.examples[:examples]):
        task = row["instruction"] + (f" [{row['input']}]" if row["input"] else "")
        lines.append(f"\n  {task[:70]!r} -> {row['reference'][:40]!r}")
        lines += [f"    step {p.step:>4}: {p.answers[i][:60]!r}" for p in timeline.points]
    return lines


def cmd_diff(args: argparse.Namespace) -> int:
    """Print two runs' held-out scores side by side with the difference, and the settings that differ."""
    from studio.evaluate.run_pair import pair_runs
    from studio.publish import run_diff

    root = args.runs_dir or runs.runs_dir()
    infos = [runs.read_run(root, run_id) for run_id in (args.run_a, args.run_b)]
    compared = []
    for info in infos:
        cmp = load_comparison(info.path)
        if cmp is None:
            raise RunError(f"Run {info.run_id} has not been compared yet; run `python -m studio compare "
                           f"{info.run_id}` first.")
        compared.append(cmp)
    pair = pair_runs(*compared)
    print(run_diff.headline(pair, args.run_a, args.run_b))
    print(pair.rows_note)
    for note in run_diff.partial_notes(*compared):
        print(note)
    print("\n" + _table([run_diff.SCORE_HEADER, *run_diff.score_rows(pair)]))
    loss = [f"{i.final_loss:.4f}" if i.final_loss is not None else "-" for i in infos]
    print(f"\nFinal training loss: A {loss[0]}, B {loss[1]}")
    changed = run_diff.settings_diff(*(i.folder.read_json(i.folder.settings_file) for i in infos))
    print("\nSettings that differ:" if changed else "\nThe two runs used the same settings.")
    if changed:
        print(_table([run_diff.SETTINGS_HEADER, *changed]))
    return 0


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


COMMANDS = {"snapshots": cmd_snapshots, "diff": cmd_diff}
