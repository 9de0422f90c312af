"""`python -m bench owndata`: the own-data flow on a real long-answer file, as a new user runs it.

    python -m bench owndata                    # AlpacaEval's 805 rows, every default, a temporary runs folder
    python -m bench owndata --write-readme     # ... and rewrite the README's owndata block
    python -m bench owndata --data FILE --set generation.baseline_shots=0

It runs `python -m studio train --data FILE` in this process through `studio.cli.main`, the command line's own code
path: the subset it takes for the time budget (the line it prints), Train, then Compare with every default (answer
loss, base, tuned, the prompt-only baseline). The file is AlpacaEval's evaluation set as the `alpaca-eval` sdist ships
it (`tests/data/real/`, its README names the source). Printed: train seconds, Compare's seconds split into answer
loss / base / tuned / baseline / the rest (length fitting, scoring, report), the fitted answer length and its reason,
the answers cut by the limit per model (and how many of those were stuck in a loop), the references' perplexity base
-> tuned with its interval, the headline, the loop guard's check (after the timed flow, when Compare's answers got
the guard: the tuned answers once more without it, cut / looping / chrF beside Compare's), the answer loss's head
check (the same run's answer loss once more, read afresh with the model's own fp32 weights and in Compare's
arithmetic: seconds, perplexities and how far Compare's per-example losses lie from fp32's, beside Compare's own
reading on the prompt caches) and PASS/FAIL for the targets below; the last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests/data/real/alpaca_eval_outputs.json.gz"
TARGET_TOTAL_SECONDS = 600.0  # train + Compare on 2 cores
TARGET_TUNED_CUT = 0.10  # share of tuned answers cut by the length limit
TARGET_LOSS_SHARE = 0.10  # what the answer loss adds to the rest of Compare's time


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy, so the bench reads the lines the command line printed."""

    def __init__(self, out: Any) -> None:
        self.out, self.kept = out, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


def run_cli(data: Path, runs_dir: Path, overrides: list[str], model_loader: Any = None) -> tuple[str, float]:
    """`python -m studio train --data FILE` with every default (plus --set overrides): (what it printed, seconds)."""
    from studio import cli

    argv = ["train", "--data", str(data), "--runs-dir", str(runs_dir)]
    for pair in overrides:
        argv += ["--set", pair]
    tee, started = _Tee(sys.stdout), time.perf_counter()
    with contextlib.redirect_stdout(tee):
        code = cli.main(argv, model_loader=model_loader)
    if code != 0:
        raise RuntimeError(f"python -m studio {' '.join(argv)} exited with {code}")
    return tee.kept.getvalue(), time.perf_counter() - started


def printed_times(output: str) -> tuple[float, float]:
    """(train, total) seconds from the command line's closing `time` line."""
    found = re.search(r"time\s+train (\d+(?:\.\d+)?) s, total (\d+(?:\.\d+)?) s", output)
    if found is None:
        raise ValueError("the command line printed no 'time train ... total ...' line")
    return float(found.group(1)), float(found.group(2))


def budget_line(output: str) -> str:
    """The line where the command line said which subset it trains on (empty when every row fit)."""
    found = re.search(r"^Training on [\d,]+ of [\d,]+ training rows .*$", output, re.MULTILINE)
    return found.group(0).strip() if found else ""


def owndata_figures(result: Any, train_s: float, total_s: float, budget: str) -> dict[str, Any]:
    """Every figure of one run from its Comparison and the command line's times (pure: no model, no clock)."""
    from studio.publish import scorecard

    loss, baseline = result.answer_loss, result.baseline
    loss_s = (loss.base_seconds + loss.tuned_seconds) if loss is not None else 0.0
    baseline_s = baseline.seconds if baseline is not None else 0.0
    compare_s = max(0.0, total_s - train_s)
    parts = {"answer_loss": loss_s, "base": result.base_seconds, "tuned": result.tuned_seconds, "baseline": baseline_s}
    cuts = {who: [c.cut, c.total, c.looped] for who in ("base", "tuned") if (c := result.cut_count(who)) is not None}
    figures: dict[str, Any] = {
        "budget_line": budget, "n_compared": len(result.rows), "train_s": train_s, "compare_s": compare_s,
        "total_s": total_s, "compare_parts_s": {**parts, "other": max(0.0, compare_s - sum(parts.values()))},
        "answer_length": result.limit, "answer_length_reason": result.answer_length_reason, "cut": cuts,
        "baseline": {"shots": baseline.shots, "reason": baseline.reason} if baseline is not None else None,
        "headline": scorecard.headline(result),
    }
    if loss is not None:
        p = loss.perplexity
        figures["perplexity"] = {"base": p.base, "tuned": p.tuned, "delta": p.delta, "low": p.low, "high": p.high,
                                 "better": loss.better, "same": loss.same, "worse": loss.worse}
    return figures


def owndata_verdicts(f: dict[str, Any]) -> dict[str, bool]:
    """The targets: total <= 10 minutes, <= 10% of tuned answers cut by the length limit (those stuck in a loop
    count too: the loop guard is there to end them), answer loss adds <= 10% to Compare's time."""
    cut, total, _ = f["cut"].get("tuned", [0, 0, 0])
    rest = f["compare_s"] - f["compare_parts_s"]["answer_loss"]
    return {f"train + Compare <= {TARGET_TOTAL_SECONDS / 60:.0f} minutes": f["total_s"] <= TARGET_TOTAL_SECONDS,
            f"<= {100 * TARGET_TUNED_CUT:.0f}% of tuned answers cut by the length limit":
                bool(total) and cut <= TARGET_TUNED_CUT * total,
            f"answer loss adds <= {100 * TARGET_LOSS_SHARE:.0f}% to Compare's time":
                f["compare_parts_s"]["answer_loss"] <= TARGET_LOSS_SHARE * max(rest, 0.0)}


def _cut_text(f: dict[str, Any]) -> str:
    parts = [f"{who} {c}/{n}" + (f" ({looped} of them stuck in a loop)" if looped else "")
             for who, (c, n, looped) in f["cut"].items()]
    return ", ".join(parts) or "not recorded"


def _perplexity_text(f: dict[str, Any]) -> str:
    p = f.get("perplexity")
    if p is None:
        return "not measured"
    ci = f" [95% CI {p['low']:+.2f}, {p['high']:+.2f}]" if p["low"] is not None else ""
    return (f"{p['base']:.2f} -> {p['tuned']:.2f} ({p['delta']:+.2f}{ci}; {p['better']} better, {p['same']} the "
            f"same, {p['worse']} worse)")


def guard_check(runs_dir: Path, run_id: str, result: Any, model_loader: Any = None) -> dict[str, Any]:
    """The run's tuned answers once more with the loop guard off (everything else as Compare answered): how many ran
    into the limit, how many of those looped, and chrF, beside the same figures with the guard on."""
    from dataclasses import replace

    from studio import runs
    from studio.evaluate.generation import generate_answers
    from studio.evaluate.lengths import count_cut
    from studio.evaluate.scoring import score
    from studio.evaluate.sharing import using
    from studio.model.threads import thread_policy, use_threads
    from studio.pipeline import open_run

    rm = open_run(runs_dir, run_id, model_loader=model_loader)
    on = result.generation_settings()
    off = replace(on, repetition_penalty=rm.settings.generation.repetition_penalty, repetition_penalty_auto=False)
    examples = rm.test[:len(result.rows)]
    prompts = [rm.template.prompt(e) for e in examples]
    with use_threads(thread_policy(rm.settings.train, runs.read_run(runs_dir, run_id).threads or None)), \
            using(rm.model, adapter=True):
        answers = generate_answers(rm.model, rm.tokenizer, prompts, off, stop_strings=tuple(rm.template.stop_strings))
    references = [e.output for e in examples]
    cut = count_cut([(a.n_tokens, a.ended_by) for a in answers], on.max_new_tokens, [a.text for a in answers])
    guarded = result.cut_count("tuned")
    return {"penalty": {"off": off.repetition_penalty, "on": on.repetition_penalty},
            "cut": {"off": [cut.cut, cut.total, cut.looped], "on": [guarded.cut, guarded.total, guarded.looped]},
            "chrf": {"off": score(references, [a.text for a in answers])[0].chrf, "on": result.tuned.chrf}}


def head_check(runs_dir: Path, run_id: str, result: Any, model_loader: Any = None) -> dict[str, Any]:
    """The run's answer loss once more, read afresh (prompt + answer, `answer_loss`, no generation) with the model's
    own fp32 weights, then in Compare's arithmetic when that was not fp32 (`studio.evaluate.precision`): seconds,
    perplexities and how far Compare's per-example losses are from fp32's; the FLOPs of Compare's own reading
    (`answer_loss_flops`) and the GEMM ceilings, fp32 and bf16, measured right after."""
    from bench.flops import gemm_flops_per_second
    from studio import runs
    from studio.evaluate import answer_loss as module
    from studio.model.threads import thread_policy, use_threads
    from studio.pipeline import open_run

    rm = open_run(runs_dir, run_id, model_loader=model_loader)
    examples = rm.test[:len(result.rows)]
    compared = result.answer_loss
    timed: dict[str, Any] = {"precision": compared.precision}
    with use_threads(thread_policy(rm.settings.train, runs.read_run(runs_dir, run_id).threads or None)):
        for precision in dict.fromkeys(("fp32", compared.precision)):
            loss = module.answer_loss(rm.model, rm.tokenizer, rm.template, examples, rm.settings.data.max_length,
                                      precision=precision)
            timed[precision] = {"seconds": loss.base_seconds + loss.tuned_seconds,
                                "perplexity": [loss.perplexity.base, loss.perplexity.tuned]}
            if precision == "fp32":
                timed["gap"] = per_example_gap(compared, loss)
        timed.update(answer_loss_flops(rm, examples))
        # Right after, at the same thread count: the ceilings of both arithmetics.
        timed["gemm_flops_per_second"] = gemm_flops_per_second()
        timed["bf16_gemm_flops_per_second"] = gemm_flops_per_second(dtype="bf16")
    return timed


def per_example_gap(got: Any, fp32: Any) -> dict[str, float]:
    """How far one answer-loss record's per-example mean losses (both models) lie from another's (fp32's): the
    largest gap, their standard deviation, and the corpus loss's shift (nats per token)."""
    import numpy as np

    theirs = {e.index: e for e in fp32.examples}
    gaps = np.array([getattr(e, who) - getattr(theirs[e.index], who) for e in got.examples if e.index in theirs
                     for who in ("base", "tuned")])
    return {"max": float(np.abs(gaps).max()) if len(gaps) else 0.0, "sd": float(gaps.std()) if len(gaps) else 0.0,
            "corpus": max(abs(got.loss.base - fp32.loss.base), abs(got.loss.tuned - fp32.loss.tuned))}


def reading_check(runs_dir: Path, run_id: str, result: Any, model_loader: Any = None) -> dict[str, Any]:
    """The compared prompts read once more (a pass's prefill, adapter on) left-padded to each batch's longest, then
    as Compare read them (`studio.evaluate.prefill`: a start they all share once, the rest by length group): tokens
    read and seconds, and the budget's estimate (`before_after.prefill_seconds`)."""
    import torch

    from studio import runs
    from studio.data.formatting import prompt_ids
    from studio.evaluate.before_after import prefill_seconds
    from studio.evaluate.generation import eval_mode, plan_batches
    from studio.evaluate.prefill import batch_plan, layout, prefilled_cache, tokens_read, whole
    from studio.evaluate.sharing import using
    from studio.model.threads import thread_policy, use_threads
    from studio.pipeline import open_run

    rm = open_run(runs_dir, run_id, model_loader=model_loader)
    gen = result.generation_settings()
    prompts = [rm.template.prompt(e) for e in rm.test[:len(result.rows)]]
    rows = [prompt_ids(rm.tokenizer, p) for p in prompts]
    lengths = [len(r) for r in rows]
    timed: dict[str, Any] = {"lengths": [min(lengths), max(lengths)], "tokens": sum(lengths)}
    with use_threads(thread_policy(rm.settings.train, runs.read_run(runs_dir, run_id).threads or None)):
        timed["estimate_s"] = prefill_seconds(rm.model, rm.tokenizer, prompts, gen.batch_size, gen.num_beams)
        with using(rm.model, adapter=True), torch.inference_mode(), eval_mode(rm.model):
            for name in ("padded", "grouped"):
                read, seconds = 0, 0.0
                for batch in plan_batches(lengths, gen.batch_size):
                    got = [rows[i] for i in batch]
                    plan = batch_plan(rm.model, got, gen.num_beams) if name == "grouped" else whole(
                        [len(r) for r in got])
                    padded = layout(got, plan, rm.tokenizer.pad_token_id or 0, rm.model.device)
                    start = time.perf_counter()
                    prefilled_cache(rm.model, padded["input_ids"], padded["attention_mask"], plan)
                    seconds += time.perf_counter() - start
                    read += tokens_read(plan)
                timed[name] = {"tokens": read, "seconds": seconds}
    return timed


def _reading_text(f: dict[str, Any]) -> str:
    r = f["reading"]
    grouped, padded = r["grouped"], r["padded"]
    return (f"{f['n_compared']} prompts of {r['lengths'][0]}-{r['lengths'][1]} tokens ({r['tokens']:,} in all): "
            f"as Compare reads them (a shared start once, then by length group) {grouped['tokens']:,} tokens read in "
            f"{grouped['seconds']:.1f} s, "
            f"left-padded {padded['tokens']:,} in {padded['seconds']:.1f} s: "
            f"{padded['seconds'] / max(grouped['seconds'], 1e-9):.1f}x faster; the budget counted "
            f"{r['estimate_s']:.1f} s a pass")


def answer_loss_flops(rm: Any, examples: list[Any]) -> dict[str, float]:
    """Model FLOPs of Compare's answer loss of both models, and those of the output head alone: the answers read on
    the prompt caches (`shared_loss`, batched as it batches them, padding counted; their attention to the prompts left
    out, so a floor), the examples it cannot read there read afresh (prompt + answer, as `answer_loss` batches)."""
    from bench.flops import model_shape, scoring_flops
    from studio.evaluate import answer_loss as module
    from studio.evaluate.lengths import answer_tokens
    from studio.evaluate.shared_loss import SharedLoss

    loss = SharedLoss.build(rm.tokenizer, rm.template, examples, rm.settings.data.max_length)
    on_cache = [len(a) for a in loss.answers if a is not None]
    afresh = [f for f, a in zip(loss.features, loss.answers) if a is None]
    batches = [[lengths[i] for i in batch] for lengths in (on_cache, [len(f.input_ids) for f in afresh])
               for batch in module.length_batches(lengths, module.BATCH_SIZE)]
    scored = sum(on_cache) + sum(answer_tokens(f) for f in afresh)
    shape = model_shape(rm.model)
    n_lora = sum(p.numel() for name, p in rm.model.named_parameters() if "lora_" in name)  # frozen when opened
    return {"flops": scoring_flops(shape, 0, batches, scored) + scoring_flops(shape, n_lora, batches, scored),
            "head_flops": 2 * scoring_flops(shape, 0, [], scored)}


def _head_text(f: dict[str, Any]) -> str:
    h = f["head"]
    precision, exact, shared = h["precision"], h["fp32"], f["compare_parts_s"]["answer_loss"]
    text = (f"read afresh (prompt + answer, no generation) with the model's own fp32 weights in "
            f"{exact['seconds']:.1f} s")
    if precision != "fp32":
        text += f", with a {precision} copy in {h[precision]['seconds']:.1f} s"
    gap = h["gap"]
    text += (f". Compare read it on generation's prompt caches, the answers alone, in {precision}, in {shared:.1f} s:"
             f" {exact['seconds'] / max(shared, 1e-9):.2f}x faster than fp32 afresh; its per-example losses lie "
             f"within {gap['max']:.1e} nats of fp32's (standard deviation {gap['sd']:.1e}), the corpus loss within "
             f"{gap['corpus']:.1e}")
    if not h.get("flops") or not h.get("gemm_flops_per_second"):
        return text
    rest = max(f["compare_s"] - shared, 1e-9)
    head = 100 * h["head_flops"] / h["flops"]
    ceilings = {"fp32": h["gemm_flops_per_second"], "bf16": h.get("bf16_gemm_flops_per_second") or 0.0}
    floors = "; ".join(f"at {name}'s {rate / 1e9:.0f} GFLOP/s {h['flops'] / rate:.0f} s, "
                       f"{100 * h['flops'] / rate / rest:.0f}% of the rest of Compare"
                       for name, rate in ceilings.items() if rate)
    return (f"{text}. Its forward passes (both models) are {h['flops'] / 1e12:.1f} TFLOP ({head:.0f}% of it the "
            f"output head), run at {h['flops'] / max(shared, 1e-9) / 1e9:.0f} GFLOP/s; at the GEMM ceilings "
            f"measured right after: {floors}")


def _guard_text(g: dict[str, Any]) -> str:
    def side(which: str) -> str:
        cut, total, looped = g["cut"][which]
        return (f"repetition penalty {g['penalty'][which]:g}: {cut}/{total} tuned answers cut ({looped} of them stuck "
                f"in a loop), chrF {g['chrf'][which]:.1f}")

    return f"{side('off')}; with it (Compare's answers) {side('on')}"


def owndata_lines(f: dict[str, Any]) -> list[str]:
    """The figures as lines for the terminal and the README."""
    parts = f["compare_parts_s"]
    split = ", ".join(f"{name.replace('_', ' ')} {seconds:.1f} s" for name, seconds in parts.items())
    shots = f["baseline"]["shots"] if f.get("baseline") else 0
    verdicts = "; ".join(f"{'PASS' if ok else 'FAIL'} {name}" for name, ok in owndata_verdicts(f).items())
    return [f"Subset: {f['budget_line'] or 'every row fit the time budget'}",
            f"Time: train {f['train_s']:.1f} s + Compare {f['compare_s']:.1f} s = {f['total_s']:.0f} s "
            f"(Compare: {split}; baseline {shots}-shot)",
            f"Answer length: {f['answer_length']} new tokens: {f['answer_length_reason']}",
            f"Cut at the length limit: {_cut_text(f)} answers ({f['n_compared']} held-out examples)",
            f"Answer perplexity: {_perplexity_text(f)}",
            f"Headline: {f['headline']}",
            *([f"Loop guard: the same tuned model without it, {_guard_text(f['loop_guard'])}"]
              if f.get("loop_guard") else []),
            *([f"Reading the prompts (each pass's prefill), the same run once more: {_reading_text(f)}"]
              if f.get("reading") else []),
            *([f"Answer loss, the same run once more: {_head_text(f)}"] if f.get("head") else []),
            f"Targets: {verdicts}."]


def owndata_block(f: dict[str, Any], machine: dict[str, Any]) -> str:
    """The README's owndata block from one `python -m bench owndata` run."""
    from bench.readme import provenance

    head = provenance("python -m bench owndata --write-readme", machine, f["load_start"], f["load_end"])
    return "\n".join([head, "", f"`python -m studio train --data {f['data']}` with every default:", "",
                      *(f"- {line}" for line in owndata_lines(f))])


def run_owndata(data: Path, runs_dir: Path, overrides: list[str], model_loader: Any = None,
                check_guard: bool = True, check_head: bool = True, check_reading: bool = True) -> dict[str, Any]:
    """The own-data flow through the command line, then its figures read back from the run folder (and, after the
    timed flow, the loop guard's check when the answers got it, the prompts' reading and the answer loss's head
    check)."""
    from studio import runs
    from studio.evaluate.comparison import load_comparison

    load_start = round(os.getloadavg()[0], 2)
    output, _ = run_cli(data, runs_dir, overrides, model_loader)
    train_s, total_s = printed_times(output)
    newest = runs.list_runs(runs_dir)[0]
    result = load_comparison(newest.path)
    if result is None:
        raise RuntimeError(f"run {newest.run_id} has no comparison")
    figures = owndata_figures(result, train_s, total_s, budget_line(output))
    shown = data.resolve().relative_to(ROOT) if data.resolve().is_relative_to(ROOT) else data
    figures.update(data=str(shown), run_id=newest.run_id, overrides=overrides, load_start=load_start,
                   load_end=round(os.getloadavg()[0], 2))
    figures["verdicts"] = owndata_verdicts(figures)
    if check_guard and result.generation_settings().repetition_penalty != 1.0:
        figures["loop_guard"] = guard_check(runs_dir, newest.run_id, result, model_loader)
    if check_reading:
        figures["reading"] = reading_check(runs_dir, newest.run_id, result, model_loader)
    if check_head and result.answer_loss is not None:
        figures["head"] = head_check(runs_dir, newest.run_id, result, model_loader)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench owndata`."""
    parser = argparse.ArgumentParser(prog="python -m bench owndata", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the long-answer file (default: AlpacaEval's 805 rows)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the run folder here (default: a temporary one)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="settings overrides")
    parser.add_argument("--write-readme", action="store_true", help="rewrite README.md's owndata block from this run")
    parser.add_argument("--no-guard-check", action="store_true",
                        help="skip answering once more without the loop guard (about 2 minutes, after the timed flow)")
    parser.add_argument("--no-head-check", action="store_true",
                        help="skip timing the answer loss once more with its logits written out (about 1.5 minutes)")
    parser.add_argument("--no-reading-check", action="store_true",
                        help="skip reading the prompts once more left-padded and as Compare reads them (about 40 s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-owndata-") as tmp:
        figures = run_owndata(args.data, args.runs_dir or Path(tmp), args.set, check_guard=not args.no_guard_check,
                              check_head=not args.no_head_check, check_reading=not args.no_reading_check)
    print("\n".join(["", "Own data, every default:", *owndata_lines(figures)]), flush=True)
    if args.write_readme:
        from bench.readme import machine_facts, write_block
        from studio.model.threads import available_cores

        print(f"Wrote {write_block('owndata', owndata_block(figures, machine_facts(available_cores())))}")
    print(json.dumps(figures, default=float))
    return 0 if all(figures["verdicts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
