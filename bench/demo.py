"""The demo target: train with the default settings, then compare base vs tuned, exactly as the app does.

Runs `TrainingJob` (the Train button) then `pipeline.compare_run` (the Compare button) on the cpu-demo defaults
and reports the times, the scores before and after, peak memory and the machine load. Targets: training plus
comparing in at most 120 s (180 s hard limit) on a warm model cache, corpus BLEU up by at least 40 points, and
exact match up.
"""
from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from studio.settings import StudioSettings

TARGET_SECONDS, HARD_LIMIT_SECONDS, TARGET_BLEU_GAIN = 120.0, 180.0, 40.0


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
    from studio.model.embedded import embedded_cache_ready, ensure_embedded_cache
    from studio.pipeline import compare_run, from_job

    settings = settings or StudioSettings()
    if model_loader is None and settings.model.model.startswith("embedded:") and not embedded_cache_ready():
        say("Building the fp32 model cache first (once, not timed) ...")
        ensure_embedded_cache()
    with tempfile.TemporaryDirectory(prefix="studio-demo-") as tmp:
        root = runs_root or Path(tmp)
        load_start, start = load1(), time.perf_counter()
        job, times = _train(settings, root, say, model_loader)
        history = job.history()
        rm = from_job(job)
        compare_start = time.perf_counter()
        result = compare_run(rm, limit=settings.data.max_test_examples)
        compare_s = time.perf_counter() - compare_start
        total = time.perf_counter() - start
    b, t = result.base, result.tuned
    losses = [r["loss"] for r in history if r.get("loss") is not None]
    tps = [r["tokens_per_second"] for r in history if r.get("tokens_per_second")]
    return {
        "train_s": round(times["train_s"], 1), "first_loss_s": round(times["first_loss_s"], 1),
        "base_gen_s": round(result.base_seconds, 1), "tuned_gen_s": round(result.tuned_seconds, 1),
        "compare_s": round(compare_s, 1), "total_s": round(total, 1),
        "steps": job.progress()["step"], "final_loss": losses[-1] if losses else None,
        "train_tokens_per_s": round(sorted(tps)[len(tps) // 2], 1) if tps else None,
        "n_test": b.n, "bleu_base": round(b.bleu, 1), "bleu_tuned": round(t.bleu, 1),
        "bleu_gain": round(t.bleu - b.bleu, 1), "chrf_base": round(b.chrf, 1), "chrf_tuned": round(t.chrf, 1),
        "exact_base": round(b.exact_match * b.n), "exact_tuned": round(t.exact_match * t.n),
        "peak_rss_gb": round(peak_rss_bytes() / 1e9, 2), "load_start": load_start, "load_end": load1(),
        "examples": [(row.reference, row.base, row.tuned) for row in result.rows[:3]],
    }


def demo_verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    """PASS/FAIL of each demo target."""
    return {
        f"total <= {TARGET_SECONDS:.0f} s": figures["total_s"] <= TARGET_SECONDS,
        f"total <= {HARD_LIMIT_SECONDS:.0f} s (hard limit)": figures["total_s"] <= HARD_LIMIT_SECONDS,
        f"BLEU gain >= {TARGET_BLEU_GAIN:.0f}": figures["bleu_gain"] >= TARGET_BLEU_GAIN,
        "exact match rises": figures["exact_tuned"] > figures["exact_base"],
    }


def demo_table(figures: dict[str, Any]) -> str:
    """The demo's figures as a few readable lines."""
    f = figures
    lines = [
        "Demo: default settings (cpu-demo), sample:word_tasks, embedded Gemma 3 270M, warm cache",
        f"  time        train {f['train_s']:.1f} s (first loss point {f['first_loss_s']:.1f} s, {f['steps']} steps)"
        f" + base generation {f['base_gen_s']:.1f} s + tuned generation {f['tuned_gen_s']:.1f} s"
        f" = total {f['total_s']:.1f} s",
        f"  BLEU        {f['bleu_base']:.1f} -> {f['bleu_tuned']:.1f} ({f['bleu_gain']:+.1f})",
        f"  chrF        {f['chrf_base']:.1f} -> {f['chrf_tuned']:.1f}",
        f"  exact match {f['exact_base']}/{f['n_test']} -> {f['exact_tuned']}/{f['n_test']}",
        f"  final loss  {f['final_loss']:.3f}   peak RSS {f['peak_rss_gb']:.2f} GB"
        f"   load average {f['load_start']:.2f} at start, {f['load_end']:.2f} at end",
    ]
    for reference, base, tuned in f["examples"]:
        lines.append(f"  e.g. expected {reference!r}: base {base[:60]!r} / tuned {tuned!r}")
    lines += [f"  {'PASS' if ok else 'FAIL'}  {name}" for name, ok in demo_verdicts(f).items()]
    return "\n".join(lines)
