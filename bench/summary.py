"""From the rounds of `python -m bench` to its figures and verdicts (pure: raw results in, figures out).

Every ratio is taken inside a round, each MFU against the GEMM ceiling measured in that round (bench/rounds.py says
why); a contender's figure is the median over the rounds, next to its min / median / max, and every target is judged
on the median.
"""
from __future__ import annotations

import statistics
from typing import Any

from bench.rounds import ratios, spread

TARGETS = {
    "train_vs_trl": 3.0, "train_vs_tutorial": 3.0, "loss_gap_vs_trl": 0.02, "eval_vs_single": 6.0,
    "warm_load_s": 5.0, "first_loss_s": 15.0, "peak_rss_gb": 3.0, "mfu": 0.5, "app_vs_cli": 1.10,
    "two_processes_vs_one": 0.85, "first_loss_two_processes_s": 15.0,  # the launcher (bench/launch.py)
}


def _contender(runs: list[dict[str, Any]], ceilings: list[float], best_per_thread: float) -> dict[str, Any]:
    """One training contender over the rounds: medians, and the spread of its speed and of its per-round MFU."""
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    speed = spread(r["tokens_per_second"] for r in runs)
    mfu = spread(ratios([r["flops_per_second"] for r in runs], ceilings))
    out = {
        "tokens_per_second": speed["median"], "tokens_per_second_range": speed,
        "seconds_per_step": med("seconds_per_step"), "padding_fraction": med("padding_fraction"),
        "final_loss": med("final_loss"), "peak_rss_gb": max(r["peak_rss_bytes"] for r in runs) / 1e9,
        "mfu": mfu["median"], "mfu_range": mfu, "gflops": med("flops_per_second") / 1e9,
        # FLOPs per CPU second against the best per-thread ceiling: barely moved by other processes' load
        "cpu_mfu": med("flops_per_cpu_second") / best_per_thread,
        "tokens_per_cpu_second": med("tokens_per_cpu_second"),
        "flops_per_real_token": med("flops_per_real_token"), "threads": med("threads"),
        "head_share_of_positions": med("head_share_of_positions"), "load_seconds": med("load_seconds"),
        "loads": [[r["load_start"], r["load_end"]] for r in runs],
    }
    for key in ("first_loss_seconds", "compare_seconds"):  # the studio's own (Compare runs in the first round only)
        if values := [r[key] for r in runs if r.get(key) is not None]:
            out[key] = statistics.median(values)
    return out


def summarise_training(raw: dict[str, Any]) -> dict[str, Any]:
    """Each contender over the rounds, MFU round by round against that round's ceiling, per-round ratios, the loss
    check and the initial-weights check. `raw["ceilings"][i]` and every `raw["runs"][name][i]` are round i's."""
    ceilings = [c["flops_per_second"] for c in raw["ceilings"]]
    if any(len(runs) != len(ceilings) for runs in raw["runs"].values()):
        raise ValueError("every contender needs one result per round, and every round its own GEMM ceiling")
    # CPU time leaves out the waits for a busy core, so it is set against the best rate a thread reached uncontended.
    best = max(ceilings) / raw["ceilings"][0].get("threads", 1)
    ceiling = spread(c / 1e9 for c in ceilings)
    out: dict[str, Any] = {"gemm_ceiling_gflops": ceiling["median"], "gemm_ceiling_range": ceiling,
                           "ceiling_loads": [c["load"] for c in raw["ceilings"]], "rounds": len(ceilings),
                           "gemm_best_per_thread_gflops": best / 1e9,
                           "ceiling_threads": raw["ceilings"][0].get("threads"), "pad_to": raw.get("pad_to", 256)}
    for name, runs in raw["runs"].items():
        out[name] = _contender(runs, ceilings, best)
    speed = lambda name: [r["tokens_per_second"] for r in raw["runs"][name]]  # noqa: E731
    for key, baseline in (("ratio_vs_trl", "trl"), ("ratio_vs_tutorial", "tutorial")):
        out[f"{key}_range"] = spread(ratios(speed("studio"), speed(baseline)))
        out[key] = out[f"{key}_range"]["median"]
    if "studio-balanced" in raw["runs"]:
        out["balanced_vs_pinned_range"] = spread(ratios(speed("studio-balanced"), speed("studio")))
    s, trl_loss = out["studio"], out["trl"]["final_loss"]
    # The check: the studio on TRL's own batch order (same sampler, same seed), so only the training can differ.
    same_order = out.get("studio-random", s)
    out["loss_gap_vs_trl"] = abs(same_order["final_loss"] - trl_loss) / trl_loss
    out["loss_gap_default_order"] = abs(s["final_loss"] - trl_loss) / trl_loss
    out["identical_initial_adapter"] = len({r["initial_adapter"] for runs in raw["runs"].values() for r in runs}) == 1
    return out


def summarise_eval(raw: dict[str, Any]) -> dict[str, Any]:
    """Add the per-round speed-ups of batched generation (one round's seconds against the same round's)."""
    studio = raw["studio"]["rounds_seconds"]
    for key, baseline in (("ratio_vs_single", "single"), ("ratio_vs_pipeline", "pipeline")):
        raw[f"{key}_range"] = spread(ratios(raw[baseline]["rounds_seconds"], studio))
        raw[key] = raw[f"{key}_range"]["median"]
    return raw


def verdicts(figures: dict[str, Any]) -> dict[str, bool | None]:
    """PASS (True) / FAIL (False) / not measured (None) for each target, on the medians over the rounds."""
    t, e, lat, app = figures.get("train"), figures.get("eval"), figures.get("latency"), figures.get("app")
    return {
        f"training >= {TARGETS['train_vs_trl']:g}x TRL defaults": t and t["ratio_vs_trl"] >= TARGETS["train_vs_trl"],
        f"training >= {TARGETS['train_vs_tutorial']:g}x tutorial Trainer":
            t and t["ratio_vs_tutorial"] >= TARGETS["train_vs_tutorial"],
        "every contender starts from the same LoRA weights": t and t["identical_initial_adapter"],
        f"final loss within {TARGETS['loss_gap_vs_trl']:.0%} of TRL":
            t and t["loss_gap_vs_trl"] <= TARGETS["loss_gap_vs_trl"],
        f"batched eval >= {TARGETS['eval_vs_single']:g}x one at a time, identical":
            e and e["ratio_vs_single"] >= TARGETS["eval_vs_single"] and e["identical"] == e["prompts"],
        f"warm load < {TARGETS['warm_load_s']:g} s": lat and lat["warm_load_s"] < TARGETS["warm_load_s"],
        f"first loss point < {TARGETS['first_loss_s']:g} s after Train":
            lat and "first_loss_s" in lat and lat["first_loss_s"] < TARGETS["first_loss_s"],
        f"peak RSS of the default run < {TARGETS['peak_rss_gb']:g} GB":
            t and t["studio"]["peak_rss_gb"] < TARGETS["peak_rss_gb"],
        f"MFU >= {TARGETS['mfu']:.0%} of the GEMM ceiling": t and t["studio"]["mfu"] >= TARGETS["mfu"],
        f"training in the app <= {TARGETS['app_vs_cli']:.2f}x the command line":
            app and app["ratio"] <= TARGETS["app_vs_cli"],
        **launch_verdicts(figures.get("launch")),
    }


def launch_verdicts(launch: dict[str, Any] | None) -> dict[str, bool | None]:
    """The launcher's two targets (bench/launch.py), on the medians over the rounds; None when not measured."""
    ratio, first = TARGETS["two_processes_vs_one"], TARGETS["first_loss_two_processes_s"]
    done = None if launch is None else launch["completed"]
    return {
        f"2 processes x 1 thread >= {ratio:.2f}x 1 process x 2 threads":
            done and launch["ratio"] >= ratio,
        f"first loss point <= {first:g} s after Train with 2 processes":
            done and 0 < launch["first_loss_seconds"] <= first,
    }


def spread_rows(figures: dict[str, Any]) -> list[tuple[str, dict[str, Any], str, str]]:
    """The figures measured round by round: (what, spread, number format, target) for the console and the README."""
    rows: list[tuple[str, dict[str, Any], str, str]] = []
    if t := figures.get("train"):
        rows += [("training, studio / TRL `SFTTrainer` defaults", t["ratio_vs_trl_range"], "{:.2f}x",
                  f">= {TARGETS['train_vs_trl']:g}x"),
                 ("training, studio / tutorial `Trainer`", t["ratio_vs_tutorial_range"], "{:.2f}x",
                  f">= {TARGETS['train_vs_tutorial']:g}x")]
        if "balanced_vs_pinned_range" in t:
            rows.append(("training, adaptive thread count / pinned", t["balanced_vs_pinned_range"], "{:.2f}x", ""))
        rows.append(("MFU of the studio, against its round's GEMM ceiling", t["studio"]["mfu_range"], "{:.0%}",
                     f">= {TARGETS['mfu']:.0%}"))
        rows += [(f"MFU of {label}, against its round's GEMM ceiling", t[name]["mfu_range"], "{:.0%}", "")
                 for name, label in (("trl", "TRL"), ("tutorial", "the tutorial Trainer")) if name in t]
        rows.append(("GEMM ceiling, GFLOP/s", t["gemm_ceiling_range"], "{:.0f}", ""))
    if (launch := figures.get("launch")) and launch["completed"]:
        rows.append(("training, 2 processes x 1 thread / 1 process x 2 threads", launch["ratio_range"], "{:.2f}x",
                     f">= {TARGETS['two_processes_vs_one']:.2f}x"))
    if e := figures.get("eval"):
        rows += [("answering, batched / one prompt at a time", e["ratio_vs_single_range"], "{:.1f}x",
                  f">= {TARGETS['eval_vs_single']:g}x"),
                 ("answering, batched / `pipeline(num_beams=5)`", e["ratio_vs_pipeline_range"], "{:.1f}x", "")]
    return rows
