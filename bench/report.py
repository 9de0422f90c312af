"""The bench's readable tables (the JSON line carries the same figures)."""
from __future__ import annotations

from typing import Any

TRAIN_LABELS = {"studio": "(a) studio TrainingJob", "trl": "(b) TRL SFTTrainer defaults",
                "tutorial": "(c) tutorial Trainer, fixed pad", "studio-balanced": "(a') studio, adaptive threads",
                "studio-random": "(a'') studio, TRL's batch order"}
EVAL_LABELS = {"studio": "(a) studio batched generate", "single": "(b) one prompt at a time",
               "pipeline": "(c) pipeline, 5 beams, batch 2"}


def _loads(pairs: list[list[float]]) -> str:
    return " ".join(f"{a:.1f}-{b:.1f}" for a, b in pairs)


def training_table(t: dict[str, Any]) -> list[str]:
    """One row per training contender."""
    lines = [f"Training (GEMM ceiling {t['gemm_ceiling_gflops']:.0f} GFLOP/s, the median of {t['rounds']} "
             f"round(s), measured as each began at loads {t['ceiling_loads']}; every figure the median over the "
             f"rounds, each round's MFU against its own ceiling; cpuMFU: "
             f"FLOPs per CPU second of the process over the best rate of one thread, "
             f"{t.get('gemm_best_per_thread_gflops', 0):.0f} GFLOP/s, steadier on a busy machine)",
             f"  {'contender':32s} {'tok/s':>7s} {'s/step':>7s} {'x(a)':>6s} {'pad%':>5s} {'MFU':>5s} {'cpuMFU':>6s} "
             f"{'GFLOP/tok':>9s} {'loss':>6s} {'RSS GB':>6s} {'thr':>3s}  load (start-end per round)"]
    for name, label in TRAIN_LABELS.items():
        if name not in t:
            continue
        c = t[name]
        speedup = t["studio"]["tokens_per_second"] / c["tokens_per_second"]
        lines.append(
            f"  {label:32s} {c['tokens_per_second']:7.1f} {c['seconds_per_step']:7.2f} {speedup:6.2f} "
            f"{100 * c['padding_fraction']:5.1f} {100 * c['mfu']:4.0f}% {100 * c.get('cpu_mfu', 0):5.0f}% "
            f"{c['flops_per_real_token'] / 1e9:9.2f} "
            f"{c['final_loss']:6.3f} {c['peak_rss_gb']:6.2f} {c['threads']:3.0f}  {_loads(c['loads'])}")
    same_order = t.get("studio-random", t["studio"])
    lines.append(f"  studio/TRL {t['ratio_vs_trl']:.2f}x, studio/tutorial {t['ratio_vs_tutorial']:.2f}x (medians of "
                 f"the per-round ratios); initial LoRA "
                 f"weights {'identical for every contender' if t['identical_initial_adapter'] else 'DIFFERENT'}")
    lines.append(f"  loss after training (answer tokens of the training examples): studio on TRL's batch order "
                 f"{same_order['final_loss']:.4f} vs TRL {t['trl']['final_loss']:.4f} "
                 f"({100 * t['loss_gap_vs_trl']:.2f}% apart); the default length-grouped order "
                 f"{t['studio']['final_loss']:.4f} ({100 * t.get('loss_gap_default_order', 0):.1f}% apart)")
    return lines


def eval_table(e: dict[str, Any]) -> list[str]:
    """One row per generation contender."""
    lines = [f"Evaluation ({e['prompts']} held-out prompts, max_new_tokens {e['max_new_tokens']}, "
             f"studio batch {e['batch_size']}, base model, peak RSS {e['peak_rss_bytes'] / 1e9:.2f} GB)",
             f"  {'contender':32s} {'s':>7s} {'prompt/s':>8s} {'tok/s':>7s} {'x(a)':>6s}  runs (s) @ load"]
    for name, label in EVAL_LABELS.items():
        c = e[name]
        speedup = e["studio"]["prompts_per_second"] / c["prompts_per_second"]
        runs = " ".join(f"{s}@{load:.1f}" for s, load in zip(c["runs"], c["loads"]))
        lines.append(f"  {label:32s} {c['seconds']:7.2f} {c['prompts_per_second']:8.2f} "
                     f"{c['tokens_per_second']:7.1f} {speedup:6.2f}  {runs}")
    lines.append(f"  greedy answers identical (a) vs (b): {e['identical']}/{e['prompts']}")
    if e.get("first_difference"):
        lines.append(f"  first difference: {e['first_difference']}")
    return lines


def latency_table(lat: dict[str, Any]) -> list[str]:
    """Model load and time to the first loss point."""
    lines = ["Latency", f"  warm model load            {lat['warm_load_s']:6.1f} s  (load {lat['warm_load_load']})"]
    if "cold_load_s" in lat:
        lines.append(f"  cold model load (builds)   {lat['cold_load_s']:6.1f} s  (load {lat['cold_load_load']})")
    if "first_loss_s" in lat:
        lines.append(f"  Train -> first loss point  {lat['first_loss_s']:6.1f} s  (warm cache, TrainingJob.start())")
    if "ask" in lat:
        a = lat["ask"]
        lines.append(f"  one question, base + tuned {a['idle_s']:6.1f} s idle, {a['training_s']:.1f} s while a job "
                     f"trains ({a['ratio']:.2f}x; {a['max_new_tokens']} new tokens; loads {a['load_idle']} / "
                     f"{a['load_training']})")
    return lines


def spread_table(figures: dict[str, Any]) -> list[str]:
    """min / median / max over the rounds of every figure measured round by round; targets read the median."""
    from bench.rounds import format_spread
    from bench.summary import spread_rows

    rows = spread_rows(figures)
    if not rows:
        return []
    lines = ["Over the rounds (each ratio taken inside one round; the targets are judged on the median)"]
    for label, s, fmt, target in rows:
        label = label.replace("`", "")
        lines.append(f"  {label:62s} {format_spread(s, fmt)}{f'  target {target}' if target else ''}")
    return lines


def format_table(figures: dict[str, Any]) -> str:
    """Every measured part as a table, then one PASS/FAIL/SKIP line per target."""
    lines = [f"Bench on {figures['cpu_count']} cores, {figures.get('threads', '?')} thread(s) pinned, load "
             f"{figures['load_start']} at start, {figures['load_end']} at end"]
    from bench.app import app_table
    from bench.launch import launch_table

    for key, table in (("train", training_table), ("eval", eval_table), ("latency", latency_table),
                       ("app", app_table), ("launch", launch_table)):
        if key in figures:
            lines += [""] + table(figures[key])
    if spread := spread_table(figures):
        lines += [""] + spread
    lines.append("")
    for name, ok in figures["verdicts"].items():
        lines.append(f"  {'SKIP' if ok is None else 'PASS' if ok else 'FAIL'}  {name}")
    return "\n".join(lines)
