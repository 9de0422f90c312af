"""Command line: `python -m studio train|compare|probe|inspect|export|verify|push|runs|presets` over the UI's library."""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from studio import cli_export, cli_runs, runs
from studio.data.columns import fix_for_cli, map_flags, roles_help
from studio.errors import ShapeError, StudioError, TruncatedFileError
from studio.evaluate.comparison import Comparison
from studio.presets import DEFAULT_PRESET, list_presets, load_preset, preset_description, read_preset
from studio.publish import scorecard
from studio.runs import RunFolder
from studio.settings import StudioSettings, apply_overrides, parse_assignments

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


TRAIN_BUDGET_MINUTES = 10.0  # train + Compare on your own data (`python -m bench owndata` measures it)

MAP_HELP = (f"map a column to a role, repeatable; the roles: {roles_help()}; e.g. --map instruction=question "
            "--map output=answer (files whose columns have common names need none)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per step."""
    parser = argparse.ArgumentParser(prog="python -m studio", description="Instruction-tune a causal LM with LoRA and compare before/after.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="load data -> split -> train LoRA -> compare base vs tuned -> report")
    _add_run_args(train)
    train.add_argument("--no-compare", action="store_true", help="stop after training (skip the before/after comparison)")
    train.add_argument("--budget-minutes", type=float, default=TRAIN_BUDGET_MINUTES, metavar="M",
                       help=f"with your own --data: train on a seeded subset when every row would not fit train + "
                            f"Compare into M minutes at this machine's speed, saying so in one line (default "
                            f"{TRAIN_BUDGET_MINUTES:g}; 0 or less trains on every row). Built-in samples, and runs whose preset "
                            "or --set chooses data.max_examples or train.max_steps, keep their own size")
    cli_runs.add_origin_args(train)
    demo = sub.add_parser("demo", help="the one-click before/after: train, compare, then the verdict and the three "
                                       "examples tuning helped most")
    _add_run_args(demo)
    sub.add_parser("warmup", help="prepare the embedded model's fp32 cache now (once per machine), printing its phases")

    compare = sub.add_parser("compare", help="compare base vs tuned on a finished run's test split and write its report")
    compare.add_argument("run_id", help="a run id from `runs`")
    compare.add_argument("--set", action="append", default=[], metavar="generation.KEY=VALUE", help="override generation settings")
    compare.add_argument("--limit", type=int, default=0, help="compare on the first N test rows only (0 = all)")
    _add_no_baseline(compare)
    _add_runs_dir(compare)

    probe = sub.add_parser("probe", help="did tuning break anything? base vs tuned on multiple-choice tasks (lm-eval)")
    probe.add_argument("run_id", help="a run id from `runs`")
    probe.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                       help="lm-eval task names (default: the built-in offline probe, studio_probe; others such as "
                            "arc_easy or hellaswag need the Hugging Face Hub)")
    probe.add_argument("--batch-size", type=int, default=None, help="rows per forward pass (default 16)")
    _add_runs_dir(probe)

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
    _add_runs_dir(judge)

    inspect = sub.add_parser("inspect", help="show a dataset's shape, what loading repaired or skipped, and one rendered example")
    inspect.add_argument("path", help="a file (JSON/JSONL/CSV/TSV/Parquet, also .gz/.bz2/.xz/.zst or a one-file .zip), "
                                      "sample:NAME, or a Hub dataset id")
    inspect.add_argument("--map", action="append", default=[], metavar="ROLE=COLUMN", help=MAP_HELP)
    inspect.add_argument("--template", default=None, help="template used to render the example (default: the one the data suits, a sample's own or chat for chat data, else the default template)")
    inspect.add_argument("--strict", action="store_true", help="refuse a file with any irregular row instead of repairing or skipping it")
    inspect.add_argument("--keep-truncated", action="store_true", help="keep the complete records of a JSON file cut off mid-record")
    inspect.add_argument("--examples", type=int, default=3, metavar="N", help="rows shown per repair/skip reason (default 3)")

    cli_export.add_parsers(sub, _add_runs_dir)
    cli_runs.add_parsers(sub, _add_runs_dir)
    sub.add_parser("presets", help="list the presets with their descriptions")
    listing = sub.add_parser("runs", help="list past runs")
    _add_runs_dir(listing)
    return parser


def _add_run_args(p: argparse.ArgumentParser) -> None:
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
    _add_no_baseline(p)
    _add_runs_dir(p)


def _add_no_baseline(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-baseline", action="store_true", help="skip the prompt-only baseline (the base model with a "
                                                              "few training examples before each prompt)")


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
    result = _compare_stoppable(rm, None, settings.data.max_test_examples)
    _print_summary(result, train_seconds, time.perf_counter() - started, rm.run_dir)
    return 0


def prepare_embedded(model: str) -> None:
    """Build the embedded model's cache in the foreground, printing each phase, when this run needs it first."""
    from studio.model.cache_progress import EXPECTED_SECONDS, PHASES
    from studio.model.embedded import embedded_cache_ready, ensure_embedded_cache
    from studio.settings import EMBEDDED_MODEL

    if model.strip() != EMBEDDED_MODEL or embedded_cache_ready():
        return
    print(f"Preparing the embedded model (first start only, about {EXPECTED_SECONDS:.0f} s on 2 cores) ...", flush=True)
    labels, started = {phase.key: phase.label for phase in PHASES}, time.perf_counter()
    ensure_embedded_cache(on_phase=lambda key: print(f"  {time.perf_counter() - started:4.0f} s  {labels[key]}",
                                                     flush=True))
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


def _compare_stoppable(rm: Any, gen: Any, limit: int) -> Comparison:
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
    cuts = [f"{c.cut}/{c.total} {who}" for who in ("base", "tuned") if (c := result.cut_count(who)) is not None]
    if cuts:
        lines.append(f"  Cut at the length limit ({result.limit} tokens): {', '.join(cuts)} answers")
    if result.answer_length_reason:
        lines.append(f"  Answer length: {result.answer_length_reason}")
    if baseline := scorecard.baseline_sentence(result):
        lines.append(f"  {baseline}")
    return lines + [f"  {scorecard.cut_note(result)}"]


def _print_summary(result: Comparison, train_seconds: float, total_seconds: float, run_dir: Path) -> None:
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
    result = _compare_stoppable(rm, gen, args.limit)
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


def cmd_judge(args: argparse.Namespace) -> int:
    """Judge a compared run pairwise; the last line is the tuned model's win rate, or says the judge is too weak."""
    import os

    from studio.evaluate.judge import judge_run, stopped_note
    from studio.evaluate.judge_backends import JudgeSpec, make_judge

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
    s = result.summary()
    lines = [stopped_note(result)] if result.partial else []
    lines.append(f"  {s['pairs']} pairs scored of {s['judged']} judged: tuned won {s['wins']}, "
                 f"{s['ties']} ties, {s['losses']} lost; {s['unreadable']} unreadable replies")
    print(*lines, f"saved to {RunFolder(info.path).judge_file}", scorecard.judge_sentence(s), sep="\n")
    return 0


def _print_pairs(done: int, total: int) -> None:
    if done == total or done % max(1, total // 8) == 0:  # about eight lines, not one per pair
        print(f"  {done}/{total} pairs", flush=True)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the detected shape, the load summary with example rows per reason, and one rendered example."""
    from studio.data.dataset import load_source
    from studio.data.words import plural
    from studio.data.templates import choose_template, get_template

    loaded = load_source(args.path, column_map=_column_map(args.map) or None, strict=args.strict,
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


COMMANDS = {"train": cmd_train, "demo": cmd_demo, "warmup": cmd_warmup, "compare": cmd_compare, "probe": cmd_probe,
            "judge": cmd_judge, "inspect": cmd_inspect, "presets": cmd_presets, "runs": cmd_runs,
            **cli_export.COMMANDS, **cli_runs.COMMANDS}
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
