"""Rounds of the bench: how many, in which order, each MFU against its own round's ceiling, ratios inside a round,
min / median / max printed and written, and every target judged on the median (fake round results, no model)."""
from __future__ import annotations

import argparse

import pytest

from bench import main as bench_main
from bench.readme import performance_block
from bench.report import format_table
from bench.rounds import DEFAULT_ROUNDS, format_spread, ratios, round_order, spread
from bench.summary import summarise_eval, summarise_training, verdicts
from tests.bench.test_readme import MACHINE

TRL, MFU = "training >= 3x TRL defaults", "MFU >= 50% of the GEMM ceiling"
EVAL = "batched eval >= 6x one at a time, identical"


def _run(tokens_per_second: float, flops_per_second: float = 50e9, **extra) -> dict:
    """One contender's figures from one round, as a training worker reports them."""
    return {"tokens_per_second": tokens_per_second, "flops_per_second": flops_per_second, "seconds_per_step": 1.0,
            "padding_fraction": 0.1, "final_loss": 1.0, "peak_rss_bytes": 2e9, "flops_per_cpu_second": 40e9,
            "tokens_per_cpu_second": 50.0, "flops_per_real_token": 6e8, "threads": 2, "head_share_of_positions": 0.3,
            "load_seconds": 3.0, "load_start": 1.0, "load_end": 1.2, "initial_adapter": "same", **extra}


def _raw(studio: list[float], trl: list[float], ceilings_gflops: list[float],
         studio_gflops: list[float] | None = None) -> dict:
    """Raw rounds: the studio, TRL and the tutorial (at a tenth of the studio's speed), one ceiling per round."""
    flops = [g * 1e9 for g in studio_gflops or [50.0] * len(studio)]
    return {"ceilings": [{"flops_per_second": g * 1e9, "load": 1.0, "threads": 2} for g in ceilings_gflops],
            "runs": {"studio": [_run(s, f, first_loss_seconds=2.0) for s, f in zip(studio, flops)],
                     "trl": [_run(t) for t in trl], "tutorial": [_run(s / 10) for s in studio]},
            "pad_to": 256}


def test_every_other_round_runs_backwards_and_neighbours_stay_neighbours():
    names = ["studio", "trl", "tutorial"]
    assert [round_order(names, r) for r in range(4)] == [names, names[::-1], names, names[::-1]]


def test_rounds_default_to_at_least_five_and_tests_can_run_fewer():
    parse = bench_main.build_parser().parse_intermixed_args
    assert DEFAULT_ROUNDS >= 5 and bench_main.default_rounds(parse([])) == DEFAULT_ROUNDS
    assert bench_main.default_rounds(parse(["--quick"])) == 1
    assert bench_main.default_rounds(parse(["--quick", "--rounds", "2"])) == 2
    assert bench_main.default_rounds(parse(["--rounds", "3"])) == 3
    assert bench_main.default_rounds(parse(["--repeats", "7"])) == 7  # the old name still works
    assert bench_main.default_rounds(parse(["levers"])) == 2  # the levers keep their own count


def test_training_runs_every_contender_once_a_round_alternating_with_a_ceiling_each_round():
    from bench.train import CONTENDERS

    args = argparse.Namespace(repeats=5, steps=2, examples=0, seed=1, warmup=1, pad_to=96, threads=2, prompts=2)
    specs, ceilings = [], []

    def run(spec):
        specs.append(spec)
        return _run(100.0)

    def ceiling(threads, say):
        ceilings.append(len(specs))  # how many runs came before this ceiling
        return {"flops_per_second": 1e11, "threads": threads, "load": 1.0}

    raw = bench_main.bench_training(args, say=lambda line: None, run=run, ceiling=ceiling)
    n = len(CONTENDERS)
    assert ceilings == [r * n for r in range(5)]  # one ceiling at the start of every round
    assert len(raw["ceilings"]) == 5 and all(len(runs) == 5 for runs in raw["runs"].values())
    order = [s["contender"] for s in specs]
    for r in range(5):
        assert order[r * n:(r + 1) * n] == (list(CONTENDERS) if r % 2 == 0 else list(CONTENDERS)[::-1])
    assert [s["compare"] for s in specs if s["contender"] == "studio"] == [True, False, False, False, False]


def test_each_rounds_mfu_is_against_that_rounds_ceiling():
    # Against one median ceiling (200) the median rate (90) would read 45%; round by round it is 90%, 50%, 20%.
    train = summarise_training(_raw([100.0] * 3, [30.0] * 3, [100.0, 300.0, 200.0], [90.0, 150.0, 40.0]))
    mfu = train["studio"]["mfu_range"]
    assert mfu["rounds"] == pytest.approx([0.9, 0.5, 0.2]) and train["studio"]["mfu"] == pytest.approx(0.5)
    assert (mfu["min"], mfu["max"]) == pytest.approx((0.2, 0.9))
    assert train["gemm_ceiling_range"]["rounds"] == pytest.approx([100.0, 300.0, 200.0])
    assert train["gemm_ceiling_gflops"] == pytest.approx(200.0) and train["rounds"] == 3


def test_ratios_are_taken_inside_each_round():
    # The ratio of the medians (90 / 30 = 3.0) would pass; the rounds' own ratios have the median 2.5.
    train = summarise_training(_raw([100.0, 60.0, 90.0], [40.0, 30.0, 20.0], [100.0] * 3))
    assert train["ratio_vs_trl_range"]["rounds"] == pytest.approx([2.5, 2.0, 4.5])
    assert train["ratio_vs_trl"] == pytest.approx(2.5) and train["ratio_vs_tutorial"] == pytest.approx(10.0)
    assert verdicts({"train": train})[TRL] is False


def test_the_training_targets_are_judged_on_the_median_not_the_best_or_worst_round():
    passes = summarise_training(_raw([20.0, 31.0, 32.0], [10.0] * 3, [100.0] * 3, [30.0, 55.0, 60.0]))
    assert passes["ratio_vs_trl_range"]["min"] < 3 and passes["studio"]["mfu_range"]["min"] < 0.5
    assert verdicts({"train": passes})[TRL] is True and verdicts({"train": passes})[MFU] is True
    fails = summarise_training(_raw([20.0, 29.0, 90.0], [10.0] * 3, [100.0] * 3, [40.0, 45.0, 90.0]))
    assert fails["ratio_vs_trl_range"]["max"] >= 3 and fails["studio"]["mfu_range"]["max"] >= 0.5
    assert verdicts({"train": fails})[TRL] is False and verdicts({"train": fails})[MFU] is False


def test_the_eval_target_is_judged_on_the_median_of_its_rounds():
    def evaluation(single: list[float]) -> dict:
        side = lambda seconds: {"rounds_seconds": seconds}  # noqa: E731
        return summarise_eval({"studio": side([1.0, 1.0, 2.0]), "single": side(single),
                               "pipeline": side([5.0, 5.0, 10.0]), "identical": 8, "prompts": 8})

    passes = evaluation([3.0, 6.5, 18.0])
    assert passes["ratio_vs_single_range"]["rounds"] == [3.0, 6.5, 9.0] and passes["ratio_vs_pipeline"] == 5.0
    assert verdicts({"eval": passes})[EVAL] is True
    assert verdicts({"eval": evaluation([3.0, 5.5, 18.0])})[EVAL] is False


def test_spread_and_its_formats():
    s = spread([3, 1, 2])
    assert s == {"min": 1.0, "median": 2.0, "max": 3.0, "rounds": [3.0, 1.0, 2.0]}
    assert format_spread(s) == "2.00x (min 1.00x, max 3.00x, 3 rounds)"
    assert format_spread(spread([0.31]), "{:.0%}") == "31% (min 31%, max 31%, 1 round)"
    with pytest.raises(ValueError):
        spread([])
    with pytest.raises(ValueError):
        ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="one result per round"):
        summarise_training({**_raw([1.0], [1.0], [100.0, 100.0])})


def test_console_and_readme_show_min_median_max_and_the_targets_on_the_medians():
    train = summarise_training(_raw([100.0, 60.0, 90.0], [40.0, 30.0, 20.0], [100.0, 300.0, 200.0],
                                    [90.0, 150.0, 40.0]))
    figures = {"cpu_count": 2, "threads": 2, "load_start": 1.0, "load_end": 1.2, "train": train}
    figures["verdicts"] = verdicts(figures)
    table = format_table(figures)
    assert "training, studio / TRL SFTTrainer defaults" in table
    assert "2.50x (min 2.00x, max 4.50x, 3 rounds)  target >= 3x" in table
    assert "50% (min 20%, max 90%, 3 rounds)  target >= 50%" in table
    assert "200 (min 100, max 300, 3 rounds)" in table
    block = performance_block(figures, MACHINE)
    assert "| training, studio / TRL `SFTTrainer` defaults | 2.00x | 2.50x | 4.50x | >= 3x |" in block
    assert "| MFU of the studio, against its round's GEMM ceiling | 20% | 50% | 90% | >= 50% |" in block
    assert "| GEMM ceiling, GFLOP/s | 100 | 200 | 300 |  |" in block
    assert "Over the 3 rounds" in block and "FAIL training >= 3x TRL defaults" in block
    assert "PASS MFU >= 50% of the GEMM ceiling" in block
