"""Command line, taking a run home: `python -m studio export|verify|push` (see `studio.cli` for the rest)."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio import runs


def add_parsers(sub: Any, add_runs_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    """The export, verify and push sub-commands."""
    export = sub.add_parser("export", help="export a run: the adapter zip, the merged model (LoRA folded in), or a GGUF for llama.cpp/Ollama")
    export.add_argument("run_id", help="a run id from `runs`")
    export.add_argument("--merged", action="store_true", help="write the merged full model (safetensors + tokenizer) instead of the adapter zip")
    export.add_argument("--zip", action="store_true", help="with --merged: also pack it as one zip with its model card")
    export.add_argument("--gguf", action="store_true", help="write the merged model as GGUF with an Ollama Modelfile; the .gguf path is the last line printed")
    _add_gguf_args(export)
    export.add_argument("--verify", action="store_true", help="with --gguf: check the file's answers against the studio's")
    add_runs_dir(export)

    verify = sub.add_parser("verify", help="answer the held-out prompts from a run's GGUF export and compare with the studio's answers")
    verify.add_argument("run_id", help="a run id from `runs`")
    _add_gguf_args(verify)
    add_runs_dir(verify)

    push = sub.add_parser("push", help="push a run's adapter or merged model to the Hugging Face Hub (token from $HF_TOKEN)")
    push.add_argument("run_id", help="a run id from `runs`")
    push.add_argument("--repo", required=True, help="the target repository, owner/name")
    push.add_argument("--what", choices=["adapter", "merged"], default="adapter", help="what to push (default adapter)")
    push.add_argument("--public", action="store_true", help="create the repository public (default private)")
    add_runs_dir(push)



def _add_gguf_args(p: argparse.ArgumentParser) -> None:
    from studio.publish.gguf import QUANTS

    p.add_argument("--quant", choices=QUANTS, default=QUANTS[0], help="GGUF precision (default f16; q8_0 is about half the size)")
    p.add_argument("--limit", type=int, default=0, help="check on the first N held-out rows only (default: those Compare used)")


def cmd_export(args: argparse.Namespace) -> int:
    """Write the adapter zip, the merged model (folder or zip) or the GGUF + Modelfile of a run."""
    from studio.publish import export

    info = runs.read_run(args.runs_dir or runs.runs_dir(), args.run_id)
    if args.gguf:
        return _export_gguf(args, info.path)
    if args.merged and args.zip:
        path = export.zip_merged(info.path, base_loader=args.model_loader)
    else:
        path = export.merge_adapter(info.path, base_loader=args.model_loader) if args.merged else export.zip_adapter(info.path)
    print(f"Exported {'the merged model' if args.merged else 'the adapter'} to {path}")
    return 0


def _export_gguf(args: argparse.Namespace, run_dir: Path) -> int:
    from studio.publish.gguf_export import export_gguf, verify_export

    result = export_gguf(run_dir, args.quant, base_loader=args.model_loader, progress=_phase_printer())
    print(f"Ollama Modelfile: {result.modelfile}  (ollama create my-model -f Modelfile)")
    if args.verify:
        _print_check(verify_export(run_dir, args.quant, limit=args.limit, base_loader=args.model_loader,
                                   progress=_phase_printer()))
    print(result.path)  # last, alone: scripts read the file's path from here
    return 0


def _phase_printer() -> Any:
    """A progress callback printing each phase once ("GGUF answers 1/24", "2/24", ... print as one line)."""
    shown: set[str] = set()

    def show(fraction: float, message: str) -> None:
        phase = " ".join(message.split()[:2])
        if phase not in shown and fraction < 1.0:
            shown.add(phase)
            print(f"  {message}", flush=True)
    return show


def _print_check(check) -> None:
    different = [row for row in check.rows if not row["equal"]]
    for row in different[:5]:
        print(f"  differs: {row['instruction'][:60]!r}: studio {row['studio'][:40]!r} vs GGUF {row['gguf'][:40]!r}")
    print(check.summary(), flush=True)


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a run's GGUF export (written first if missing) against the studio's tuned answers."""
    from studio.publish.gguf_export import verify_export

    info = runs.read_run(args.runs_dir or runs.runs_dir(), args.run_id)
    _print_check(verify_export(info.path, args.quant, limit=args.limit, base_loader=args.model_loader,
                               progress=_phase_printer()))
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


COMMANDS = {"export": cmd_export, "verify": cmd_verify, "push": cmd_push}
