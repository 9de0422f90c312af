"""Command line, the optional checks of a trained run beyond Compare's scores: `python -m studio probe` (did tuning
break anything?) and `python -m studio judge` (an LLM judge, both answer orders); see `studio.cli` for the rest."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from studio import cli_runs, runs
from studio.errors import StudioError
from studio.publish import scorecard
from studio.runs import RunFolder


def add_parsers(sub: Any, add_runs_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    """The probe and judge sub-commands."""
    probe = sub.add_parser("probe", help="did tuning break anything? base vs tuned on multiple-choice tasks (lm-eval)")
    probe.add_argument("run_id", help="a run id from `runs`")
    probe.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                       help="lm-eval task names (default: the built-in offline probe, studio_probe; others such as "
                            "arc_easy or hellaswag need the Hugging Face Hub)")
    probe.add_argument("--batch-size", type=int, default=None, help="rows per forward pass (default 16)")
    add_runs_dir(probe)

    judge = sub.add_parser("judge", help="an LLM judge picks the better answer, base vs tuned, in both orders: the "
                                         "tuned model's win rate with its interval and the judge's self-agreement")
    judge.add_argument("run_id", help="a compared run's id from `runs`")
    judge.add_argument("--endpoint", metavar="URL", help="an OpenAI-compatible server (llama-server, Ollama, vLLM, a "
                       "hosted API), e.g. http://127.0.0.1:8080")
    judge.add_argument("--judge-model", metavar="NAME", help="with --endpoint: the model name the server expects; "
                       "alone: a chat model's Hub id or local folder, run here through transformers")
    judge.add_argument("--api-key-env", metavar="VAR", help="the environment variable holding the endpoint's API key "
                       "(the key is sent as a Bearer header, never written)")
    judge.add_argument("--providers", action="store_true", help="run --judge-model on Hugging Face Inference "
                       "Providers with $HF_TOKEN (needs the network)")
    add_runs_dir(judge)


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


def cmd_judge(args: argparse.Namespace) -> int:
    """Judge a compared run pairwise and rewrite its report with the judge; the last line is the tuned model's win
    rate, or says the judge is too weak."""
    import os

    from studio.evaluate.judge import judge_run, stopped_note
    from studio.evaluate.judge_backends import JudgeSpec, make_judge
    from studio.publish.report import write_report

    if not (args.endpoint or args.judge_model):
        raise StudioError("Name a judge: --endpoint URL (an OpenAI-compatible server) or --judge-model "
                          "HUB_ID_OR_FOLDER.")
    if args.api_key_env and not os.environ.get(args.api_key_env):
        raise StudioError(f"The environment variable {args.api_key_env} holds no API key; set it or leave "
                          "--api-key-env out.")
    info = runs.read_run(args.runs_dir or runs.runs_dir(), args.run_id)
    backend = "endpoint" if args.endpoint else "providers" if args.providers else "transformers"
    key_var = args.api_key_env or ("" if backend == "endpoint" else "HF_TOKEN")  # a Hub or provider judge: the token
    key = os.environ.get(key_var) or None if key_var else None
    spec = JudgeSpec(backend=backend, model=args.judge_model or "", endpoint=args.endpoint or "")
    judge = make_judge(spec, key, model_loader=args.model_loader)
    print(f"Judging run {info.run_id} with {judge.name}: every pair in both orders (Ctrl-C stops after the pair) ...",
          flush=True)
    with cli_runs.ctrl_c_stops("the judge") as stop:
        result = judge_run(info.path, judge, scorecard.JUDGE_MIN_AGREEMENT, should_stop=stop.is_set,
                           progress=_print_pairs)
    write_report(info.path)  # the report's headline carries the judge from now on, as after the UI's judging
    s = result.summary()
    lines = [stopped_note(result)] if result.partial else []
    lines.append(f"  {s['pairs']} pairs scored of {s['judged']} judged: tuned won {s['wins']}, "
                 f"{s['ties']} ties, {s['losses']} lost; {s['unreadable']} unreadable replies")
    print(*lines, f"saved to {RunFolder(info.path).judge_file}", scorecard.judge_sentence(s), sep="\n")
    return 0


def _print_pairs(done: int, total: int) -> None:
    if done == total or done % max(1, total // 8) == 0:  # about eight lines, not one per pair
        print(f"  {done}/{total} pairs", flush=True)


COMMANDS = {"probe": cmd_probe, "judge": cmd_judge}
