"""Command line, looking at data before training: `python -m studio inspect`, and `--map ROLE=COLUMN` for every
command that reads a file (see `studio.cli` for the rest)."""
from __future__ import annotations

import argparse
from typing import Any

from studio.data.columns import map_flags, roles_help
from studio.errors import StudioError
from studio.settings import StudioSettings

MAP_HELP = (f"map a column to a role, repeatable; the roles: {roles_help()}; e.g. --map instruction=question "
            "--map output=answer (files whose columns have common names need none)")


def add_parsers(sub: Any) -> None:
    """The inspect sub-command."""
    inspect = sub.add_parser("inspect", help="show a dataset's shape, what loading repaired or skipped, and one rendered example")
    inspect.add_argument("path", help="a file (JSON/JSONL/CSV/TSV/Parquet, also .gz/.bz2/.xz/.zst or a one-file .zip), "
                                      "sample:NAME, or a Hub dataset id")
    inspect.add_argument("--map", action="append", default=[], metavar="ROLE=COLUMN", help=MAP_HELP)
    inspect.add_argument("--template", default=None, help="template used to render the example (default: the one the data suits, a sample's own or chat for chat data, else the default template)")
    inspect.add_argument("--strict", action="store_true", help="refuse a file with any irregular row instead of repairing or skipping it")
    inspect.add_argument("--keep-truncated", action="store_true", help="keep the complete records of a JSON file cut off mid-record")
    inspect.add_argument("--examples", type=int, default=3, metavar="N", help="rows shown per repair/skip reason (default 3)")


def column_map(pairs: list[str]) -> dict[str, str]:
    """`--map ROLE=COLUMN` pairs as a role -> column mapping; a malformed pair is one error sentence."""
    out = {}
    for pair in pairs:
        role, sep, column = pair.partition("=")
        if not sep or not role.strip() or not column.strip():
            raise StudioError(f"Expected ROLE=COLUMN for --map, got {pair!r}.")
        out[role.strip()] = column.strip()
    return out


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the detected shape, the load summary with example rows per reason, and one rendered example."""
    from studio.data.dataset import load_source
    from studio.data.words import plural
    from studio.data.templates import choose_template, get_template

    loaded = load_source(args.path, column_map=column_map(args.map) or None, strict=args.strict,
                         keep_truncated=args.keep_truncated)
    name = choose_template(args.template or StudioSettings().data.template, loaded.recommended_template,
                           chosen=bool(args.template))
    template = get_template(name, custom=StudioSettings().data.custom_template)
    print(f"source:  {loaded.source}")
    print(f"shape:   {loaded.shape.name} ({loaded.shape.reason})")
    if flags := map_flags(loaded.shape.mapping):
        print(f"mapping: {flags}  (to change it, pass --map ROLE=COLUMN)")
    print(f"columns: {', '.join(loaded.columns)}")
    fixed = f" (+{len(loaded.fixed_test)} fixed test rows)" if loaded.fixed_test else ""
    print(f"rows:    {loaded.summary.line()}{fixed}")
    _print_split(loaded)
    if loaded.n_multi_turn:
        trains = ("trains every assistant turn" if template.multi_turn
                  else "is single-turn: earlier turns are flattened into the prompt and only the last answer is trained")
        print(f"chats:   {plural(loaded.n_multi_turn, 'multi-turn chat')}; template '{template.name}' {trains}.")
    _print_reasons(loaded.summary, args.examples)
    # A multi-turn chat shows best what is trained; otherwise the first example.
    index = next((i for i, e in enumerate(loaded.examples) if e.history), 0)
    _print_rendered(template, loaded.examples[index], index + 1)
    return 0


def _print_split(loaded: Any) -> None:
    """The default split's sizes and how many held-out prompts look like training prompts (`data.overlap`)."""
    from studio.data.dataset import prepare_splits
    from studio.data.overlap import overlap_line

    try:
        splits = prepare_splits(loaded, StudioSettings().data)
    except StudioError as exc:
        print(f"split:   {exc}")
        return
    c, repeats = splits.counts, overlap_line(len(splits.near_duplicates))
    print(f"split:   {c['train']:,} train, {c['test']:,} held out (default settings); "
          f"{repeats or 'no held-out prompt looks like a training prompt.'}")


def _print_reasons(summary: Any, per_reason: int) -> None:
    """Each repair/skip reason with its count and a few of its rows."""
    from studio.data.summary import reason_label

    for key, kind, count, notes in summary.reasons():
        print(f"\n{reason_label(key)}: {count} {kind}")
        for note in notes[:per_reason]:
            print(f"  row {note.row} {note.detail}: {note.text}")


def _print_rendered(template: Any, example: Any, number: int) -> None:
    """One example as the template renders it, piece by piece: masked (prompt) and trained (answers)."""
    print(f"\nexample {number} rendered with template '{template.name}' (the prompt is masked, completions are trained):")
    for text, trained in template.render(example).segments():
        print(f"----- {'completion (trained)' if trained else 'prompt (masked)'} -----")
        print(text)


COMMANDS = {"inspect": cmd_inspect}
