"""The demo targets: train with a preset's settings, then compare base vs tuned, exactly as the app does.

Runs `TrainingJob` (the Train button) then `pipeline.compare_run` (the Compare button) and reports the times, the
scores before and after with the 95% paired-bootstrap interval of the BLEU change, peak memory and the machine load.
With `repeats` > 1 it runs again from scratch and checks that every run gave the same answers and numbers.

Targets (issue 11), on a warm model cache and 2 cores:
- the default demo (cpu-demo, word tasks): train + compare <= 90 s, corpus BLEU gain >= +35 with the interval's lower
  bound above +20, exact match up, the same numbers on a second run;
- the docs assistant (product-docs-cpu): train + compare <= 300 s, at least half of the held-out paraphrased questions
  answered with the right fact, at least 5 of the 6 off-topic questions declined, no on-topic question refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.flops import gemm_flops_per_second
from studio.settings import StudioSettings

TARGET_SECONDS, TARGET_BLEU_GAIN, TARGET_CI_LOW = 90.0, 35.0, 20.0
DOCS_SECONDS, DOCS_MIN_DECLINED = 300.0, 5
DOCS_DATASET = "sample:product_docs"


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load1() -> float:
    """The 1-minute load average (2.0 means both cores of a 2-core machine busy on average)."""
    return round(os.getloadavg()[0], 2)


def _train(settings: StudioSettings, root: Path, say, model_loader=None) -> tuple[Any, dict[str, float]]:
    """Run a TrainingJob to the end, printing its log; times from start() to the first loss point and to the end."""
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob

    job = TrainingJob(settings, root, queue=JobQueue(), model_loader=model_loader)
    start = time.perf_counter()
    job.start()
    first_loss, printed = None, 0
    while not job.join(timeout=0.1):
        if first_loss is None and any(r.get("loss") is not None for r in job.history()):
            first_loss = time.perf_counter() - start
        logs = job.logs()
        for line in logs[printed:]:
            say(f"  {line}")
        printed = len(logs)
    seconds = time.perf_counter() - start
    for line in job.logs()[printed:]:
        say(f"  {line}")
    if job.status != "completed":
        raise RuntimeError(f"training ended {job.status}: {job.error or job.message}")
    return job, {"train_s": seconds, "first_loss_s": first_loss if first_loss is not None else seconds}


def run_demo(settings: StudioSettings | None = None, runs_root: Path | None = None, say=print,
             model_loader=None) -> dict[str, Any]:
    """Train + compare on `settings` (default: cpu-demo) and return every figure of the demo as a flat dict.

    `model_loader` replaces `load_base_model` (the tests pass a tiny model).
    """
    from studio import runs
    from studio.model.embedded import embedded_cache_ready, ensure_embedded_cache
    from studio.model.threads import on_own_thread
    from studio.pipeline import compare_run, from_job

    settings = settings or StudioSettings()
    if model_loader is None and settings.model.model.startswith("embedded:") and not embedded_cache_ready():
        say("Building the fp32 model cache first (once, not timed) ...")
        on_own_thread(ensure_embedded_cache)
    # The machine's own speed, measured before the clock starts: the same VM has run the demo 2.7x slower on one
    # day than another, and a time target read without it says more about the host than about the studio.
    gemm = gemm_flops_per_second(threads=settings.train.threads or None)
    with tempfile.TemporaryDirectory(prefix="studio-demo-") as tmp:
        root = runs_root or Path(tmp)
        load_start, start = load1(), time.perf_counter()
        job, times = _train(settings, root, say, model_loader)
        times["gemm_gflops"] = gemm / 1e9
        history = job.history()
        rm = from_job(job)
        compare_start = time.perf_counter()
        # Its own thread, as the app runs it: OpenMP workers left on this one would slow the next run's training.
        result = on_own_thread(compare_run, rm, limit=settings.data.max_test_examples)
        compare_s = time.perf_counter() - compare_start
        total = time.perf_counter() - start
        times["threads"] = runs.read_run(root, job.run_id).threads  # the count the run was pinned to
    return _figures(settings, job, times, history, result, compare_s, total, load_start)


def _figures(settings: StudioSettings, job: Any, times: dict[str, float], history: list[dict], result: Any,
             compare_s: float, total: float, load_start: float) -> dict[str, Any]:
    """Every figure of one demo run, flat and JSON-ready."""
    b, t = result.base, result.tuned
    losses = [r["loss"] for r in history if r.get("loss") is not None]
    tps = [r["tokens_per_second"] for r in history if r.get("tokens_per_second")]
    bleu = result.changes.get("bleu")
    figures = {
        "dataset": settings.data.dataset, "threads": times.get("threads"),
        "train_s": round(times["train_s"], 1), "first_loss_s": round(times["first_loss_s"], 1),
        "base_gen_s": round(result.base_seconds, 1), "tuned_gen_s": round(result.tuned_seconds, 1),
        "compare_s": round(compare_s, 1), "total_s": round(total, 1),
        "steps": job.progress()["step"], "final_loss": losses[-1] if losses else None,
        "train_tokens_per_s": round(sorted(tps)[len(tps) // 2], 1) if tps else None,
        "n_test": b.n, "bleu_base": round(b.bleu, 1), "bleu_tuned": round(t.bleu, 1),
        "bleu_gain": round(t.bleu - b.bleu, 1),
        "bleu_ci": [round(bleu.low, 1), round(bleu.high, 1)] if bleu and bleu.low is not None else None,
        "chrf_base": round(b.chrf, 1), "chrf_tuned": round(t.chrf, 1),
        "exact_base": round(b.exact_match * b.n), "exact_tuned": round(t.exact_match * t.n),
        "tally": [result.tally.wins, result.tally.ties, result.tally.losses] if result.tally else None,
        "peak_rss_gb": round(peak_rss_bytes() / 1e9, 2), "load_start": load_start, "load_end": load1(),
        "gemm_gflops": round(times.get("gemm_gflops", 0.0), 1),
        "examples": [(row.reference, row.base, row.tuned) for row in result.rows[:3]],
        "answers_sha": answers_digest(result),
    }
    if settings.data.dataset == DOCS_DATASET:
        from studio.data.samples.product_docs import grade_counts

        references = [row.reference for row in result.rows]
        figures["graded_base"] = grade_counts(references, [row.base for row in result.rows])
        figures["graded"] = grade_counts(references, [row.tuned for row in result.rows])
    return figures


def answers_digest(result: Any) -> str:
    """A short hash of every answer (cut and raw) and score: equal digests mean an identical before/after."""
    rows = [(r.base_raw or r.base, r.tuned_raw or r.tuned, r.base_bleu, r.tuned_bleu) for r in result.rows]
    payload = json.dumps([rows, result.base.bleu, result.tuned.bleu], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def run_demos(settings: StudioSettings, repeats: int, runs_root: Path | None = None, say=print,
              model_loader=None) -> dict[str, Any]:
    """The demo `repeats` times from scratch: the first run's figures plus every run's total and answer digest."""
    runs = []
    for i in range(max(repeats, 1)):
        if repeats > 1:
            say(f"Demo run {i + 1} of {repeats}")
        runs.append(run_demo(settings, runs_root, say, model_loader))
    figures = dict(runs[0])
    if repeats > 1:
        figures["repeats"] = [{"total_s": r["total_s"], "bleu_base": r["bleu_base"], "bleu_tuned": r["bleu_tuned"],
                               "answers_sha": r["answers_sha"], "load_start": r["load_start"]} for r in runs]
        figures["same_every_run"] = len({r["answers_sha"] for r in runs}) == 1
    return figures


def demo_verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    """PASS/FAIL of each target of this demo (the docs targets when its answers were graded)."""
    # The time target is the first run's: it starts on an idle machine, as the target asks; a run right after another
    # starts on cores that have just been busy, and this kind of machine slows down under sustained load.
    f, total = figures, figures["total_s"]
    if "graded" in f:
        g = f["graded"]
        verdicts = {
            f"train + compare <= {DOCS_SECONDS:.0f} s (first run)": total <= DOCS_SECONDS,
            "at least half the held-out questions answered with the right fact": 2 * g["right"] >= g["facts"],
            f"at least {DOCS_MIN_DECLINED} of {g['off_topic']} off-topic questions declined":
                g["declined"] >= min(DOCS_MIN_DECLINED, g["off_topic"]),
            "no on-topic question refused": g["refused"] == 0,
        }
    else:
        low = (f.get("bleu_ci") or [None])[0]
        verdicts = {
            f"train + compare <= {TARGET_SECONDS:.0f} s (first run)": total <= TARGET_SECONDS,
            f"BLEU gain >= +{TARGET_BLEU_GAIN:.0f}": f["bleu_gain"] >= TARGET_BLEU_GAIN,
            f"95% interval of the gain above +{TARGET_CI_LOW:.0f}": low is not None and low > TARGET_CI_LOW,
            "exact match rises": f["exact_tuned"] > f["exact_base"],
        }
    if "same_every_run" in f:
        verdicts[f"same answers and numbers on all {len(f['repeats'])} runs"] = f["same_every_run"]
    return verdicts


def demo_table(figures: dict[str, Any]) -> str:
    """The demo's figures as a few readable lines."""
    f = figures
    ci = f" [95% CI {f['bleu_ci'][0]:+.1f}, {f['bleu_ci'][1]:+.1f}]" if f.get("bleu_ci") else ""
    lines = [
        f"Demo: {f.get('preset', 'cpu-demo')}, {f.get('dataset', 'sample:word_tasks')}, embedded Gemma 3 270M, "
        "warm cache",
        f"  time        train {f['train_s']:.1f} s (first loss point {f['first_loss_s']:.1f} s, {f['steps']} steps)"
        f" + base generation {f['base_gen_s']:.1f} s + tuned generation {f['tuned_gen_s']:.1f} s"
        f" = total {f['total_s']:.1f} s",
        f"  BLEU        {f['bleu_base']:.1f} -> {f['bleu_tuned']:.1f} ({f['bleu_gain']:+.1f}){ci}",
        f"  chrF        {f['chrf_base']:.1f} -> {f['chrf_tuned']:.1f}",
        f"  exact match {f['exact_base']}/{f['n_test']} -> {f['exact_tuned']}/{f['n_test']}",
        f"  final loss  {f['final_loss']:.3f}   peak RSS {f['peak_rss_gb']:.2f} GB"
        f"   load average {f['load_start']:.2f} at start, {f['load_end']:.2f} at end",
    ]
    if f.get("gemm_gflops"):
        lines.append(f"  machine     fp32 GEMM {f['gemm_gflops']:.0f} GFLOP/s at the start (times scale with it)")
    if f.get("tally"):
        lines.append(f"  per example {f['tally'][0]} better, {f['tally'][1]} the same, {f['tally'][2]} worse")
    for key, who in (("graded_base", "base"), ("graded", "tuned")):
        if key in f:
            g = f[key]
            lines.append(f"  {who:<6} facts right {g['right']}/{g['facts']} (wrong {g['wrong']}, refused "
                         f"{g['refused']}); off-topic declined {g['declined']}/{g['off_topic']}")
    for r in f.get("repeats", []):
        lines.append(f"  run         total {r['total_s']:.1f} s, BLEU {r['bleu_base']:.1f} -> {r['bleu_tuned']:.1f},"
                     f" answers {r['answers_sha']} (load {r['load_start']:.2f})")
    for reference, base, tuned in f["examples"]:
        lines.append(f"  e.g. expected {reference!r}: base {base[:60]!r} / tuned {tuned!r}")
    lines += [f"  {'PASS' if ok else 'FAIL'}  {name}" for name, ok in demo_verdicts(f).items()]
    return "\n".join(lines)
