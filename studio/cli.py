"""Command line: `python -m studio train|demo|compare|probe|judge|inspect|export|verify|push|runs|presets` over the
UI's library. This module is the entry point (the parser, `main`, the listings); each group of sub-commands lives in
its own `cli_*` module: `cli_train`, `cli_compare`, `cli_judge`, `cli_data`, `cli_export`, `cli_runs`."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from studio import cli_compare, cli_data, cli_export, cli_judge, cli_runs, cli_train, runs
from studio.data.columns import fix_for_cli
from studio.errors import ShapeError, StudioError, TruncatedFileError
from studio.presets import list_presets, preset_description

EPILOG = """examples:
  python -m studio train                                  # embedded Gemma 3 270M on sample:word_tasks, preset cpu-demo
  python -m studio demo                                   # the one-click before/after: train, compare, best examples
  python -m studio warmup                                 # prepare the embedded model's cache (first start only)
  python -m studio train --data my.jsonl --set train.epochs=2 --set lora.r=8
  python -m studio train --preset codealpaca-gptneo --model EleutherAI/gpt-neo-125m   # needs the Hub
  python -m studio inspect my.csv --map instruction=question --map output=reply
  python -m studio inspect sharegpt.json --keep-truncated   # what is repaired or skipped, and why
  python -m studio train --resume 20261121-101500-a1b2c3           # finish an interrupted or stopped run
  python -m studio train --continue 20261121-101500-a1b2c3 --set train.epochs=1   # one more epoch, as a new run
  python -m studio compare 20261121-101500-a1b2c3                 # Ctrl-C stops after the batch, keeps the rest
  python -m studio snapshots 20261121-101500-a1b2c3 [--choose validation_bleu]   # watch it learn
  python -m studio diff 20261121-101500-a1b2c3 20261121-113000-d4e5f6
  python -m studio export 20261121-101500-a1b2c3 --merged [--zip]
  python -m studio export 20261121-101500-a1b2c3 --gguf --quant q8_0 --verify   # llama.cpp / Ollama, checked
  python -m studio verify 20261121-101500-a1b2c3 --quant f16
  python -m studio probe 20261121-101500-a1b2c3             # did tuning break anything? (needs lm-eval)
  python -m studio judge 20261121-101500-a1b2c3 --endpoint http://127.0.0.1:8080   # an LLM judge, both orders
  HF_TOKEN=hf_... python -m studio push 20261121-101500-a1b2c3 --repo me/my-adapter
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per step."""
    parser = argparse.ArgumentParser(prog="python -m studio", description="Instruction-tune a causal LM with LoRA and compare before/after.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    cli_train.add_parsers(sub, _add_runs_dir)
    cli_compare.add_parsers(sub, _add_runs_dir)
    cli_judge.add_parsers(sub, _add_runs_dir)
    cli_data.add_parsers(sub)
    cli_export.add_parsers(sub, _add_runs_dir)
    cli_runs.add_parsers(sub, _add_runs_dir)
    sub.add_parser("presets", help="list the presets with their descriptions")
    listing = sub.add_parser("runs", help="list past runs")
    _add_runs_dir(listing)
    return parser


def _add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", type=Path, default=None, help="where run folders live (default $STUDIO_RUNS_DIR or ./runs)")


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
        parent = f"  (trained more from {r.parent_run})" if r.parent_run else ""
        print(f"{r.run_id}  {r.status:11s} {r.base_model:28s} {r.dataset:24s} {loss:12s} {bleu}{parent}")
    return 0


COMMANDS = {**cli_train.COMMANDS, **cli_compare.COMMANDS, **cli_judge.COMMANDS, **cli_data.COMMANDS,
            **cli_export.COMMANDS, **cli_runs.COMMANDS, "presets": cmd_presets, "runs": cmd_runs}
# Library warnings that say nothing a studio user can act on (each matched by its own text, never all warnings).
QUIET_WARNINGS = (
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),  # transformers 5, read by peft/TRL every run
)


def quiet_library_warnings() -> None:
    """Filter the library warnings listed in QUIET_WARNINGS and the libraries' own progress bars from the output."""
    for category, message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights 236/236" in 0.0 s, on every model load


def main(argv: list[str] | None = None, model_loader: Any = None) -> int:
    """Entry point; a StudioError prints one line and exits with status 2.

    `model_loader(model_settings, token=None) -> LoadedModel` replaces the real base-model loader (tests inject a
    tiny model through it).
    """
    args = build_parser().parse_args(argv)
    args.model_loader = model_loader
    quiet_library_warnings()
    try:
        return COMMANDS[args.command](args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, TruncatedFileError):
            print(f"hint: to keep the {exc.complete:,} complete records, add --keep-truncated (inspect) or "
                  "--set data.keep_truncated=true (train).", file=sys.stderr)
        elif isinstance(exc, ShapeError) and (fix := fix_for_cli(exc.columns)):
            print(f"hint: {fix}", file=sys.stderr)
        return 2
