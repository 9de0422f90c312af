"""The launcher's bench (bench/launch.py) on fake timings: rounds, medians, verdicts, its lines and its hooks in
`python -m bench` (the main table and the `launch` sub-command)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import main as bench
from bench import summary
from bench.launch import CONTENDERS, contender_overrides, launch_rounds, launch_table, summarise_launch
from bench.report import format_table

RATIO = "2 processes x 1 thread >= 0.85x 1 process x 2 threads"
FIRST = "first loss point <= 15 s after Train with 2 processes"


def fake_run(speeds: dict[str, list[float]], first_loss: list[float]):
    """A `timed_run` stand-in: each contender's next tokens/s (and, for two processes, the next first loss)."""
    calls: list[str] = []

    def run(overrides: dict, root: Path) -> dict:
        name = CONTENDERS[1] if overrides["train"].get("num_processes", 1) == 2 else CONTENDERS[0]
        calls.append(name)
        i = calls.count(name) - 1
        first = first_loss[i] if name == CONTENDERS[1] else 4.0
        return {"status": "completed", "error": "", "tokens_per_second": speeds[name][i],
                "first_loss_seconds": first, "final_loss": 2.5 - i / 10, "wall_seconds": 30.0}
    return run, calls


def test_both_contenders_run_every_round_in_alternating_order_with_the_same_rows_per_step():
    run, calls = fake_run({CONTENDERS[0]: [60.0, 62.0, 58.0], CONTENDERS[1]: [54.0, 50.0, 57.0]}, [11.0, 9.0, 10.0])
    raw = launch_rounds(6, 4, 3, say=lambda line: None, run=run)
    assert calls == [CONTENDERS[0], CONTENDERS[1], CONTENDERS[1], CONTENDERS[0], CONTENDERS[0], CONTENDERS[1]]
    one, two = (contender_overrides(name, 6, 4)["train"] for name in CONTENDERS)
    assert (one["batch_size"], one["threads"]) == (8, 2) and (two["batch_size"], two["threads"]) == (4, 1)
    assert two["num_processes"] == 2 and one["max_steps"] == two["max_steps"] == 6

    figures = summarise_launch(raw)
    assert figures["ratio_range"]["rounds"] == pytest.approx([54 / 60, 50 / 62, 57 / 58])  # inside each round
    assert figures["ratio"] == pytest.approx(54 / 60) and figures["first_loss_seconds"] == 10.0
    assert figures[CONTENDERS[0]]["tokens_per_second"] == 60.0 and figures["rounds"] == 3
    verdicts = summary.launch_verdicts(figures)
    assert verdicts == {RATIO: True, FIRST: True}
    json.dumps(figures)


def test_verdicts_fail_on_the_median_and_skip_when_not_measured():
    run, _ = fake_run({CONTENDERS[0]: [60.0, 60.0, 60.0], CONTENDERS[1]: [40.0, 58.0, 45.0]}, [9.0, 16.0, 17.0])
    figures = summarise_launch(launch_rounds(6, 4, 3, say=lambda line: None, run=run))
    assert summary.launch_verdicts(figures) == {RATIO: False, FIRST: False}  # one good round is not the median
    assert summary.launch_verdicts(None) == {RATIO: None, FIRST: None}
    failed = {**figures, "completed": False}
    assert summary.launch_verdicts(failed) == {RATIO: False, FIRST: False}


def test_the_lines_read_both_contenders_the_spread_and_the_targets():
    run, _ = fake_run({CONTENDERS[0]: [60.0], CONTENDERS[1]: [57.0]}, [12.3])
    figures = summarise_launch(launch_rounds(6, 4, 1, say=lambda line: None, run=run))
    lines = launch_table(figures)
    assert lines[0] == "Launcher (6 steps of 8 rows on the embedded model, the median of 1 round(s))"
    assert lines[1].startswith("  1 process x 2 threads  60.0 tokens/s, first loss point 4.0 s after Train")
    assert lines[2].startswith("  2 processes x 1 thread 57.0 tokens/s, first loss point 12.3 s after Train")
    assert "0.95x (min 0.95x, max 0.95x, 1 round)  target >= 0.85x" in lines[3]
    assert "12.3 s (min 12.3 s, max 12.3 s, 1 round)  target <= 15 s" in lines[4]


def test_a_run_that_fails_is_said_and_judged_failed():
    run, _ = fake_run({CONTENDERS[0]: [60.0], CONTENDERS[1]: [None]}, [-1])

    def broken(overrides: dict, root: Path) -> dict:
        failed = {"status": "failed", "error": "No."} if "num_processes" in overrides["train"] else {}
        return {**run(overrides, root), **failed}

    figures = summarise_launch(launch_rounds(6, 4, 1, say=lambda line: None, run=broken))
    assert not figures["completed"] and "a run did not complete: No." in launch_table(figures)[-1]
    assert summary.launch_verdicts(figures) == {RATIO: False, FIRST: False}


def test_the_main_bench_table_has_the_launcher_line_and_its_verdicts():
    run, _ = fake_run({CONTENDERS[0]: [60.0], CONTENDERS[1]: [57.0]}, [12.3])
    figures = {"cpu_count": 2, "threads": 2, "load_start": 1.0, "load_end": 1.1,
               "launch": summarise_launch(launch_rounds(6, 4, 1, say=lambda line: None, run=run))}
    figures["verdicts"] = summary.verdicts(figures)
    table = format_table(figures)
    assert "Launcher (6 steps of 8 rows" in table and f"PASS  {RATIO}" in table and f"PASS  {FIRST}" in table
    assert "training, 2 processes x 1 thread / 1 process x 2 threads" in table  # the over-the-rounds row
    assert "SKIP  warm load < 5 s" in table


def test_the_bench_runs_the_launcher_as_a_part_and_as_its_own_command(capsys):
    assert "launch" in bench.build_parser().parse_args([]).only.split(",")
    assert "launch" in bench.build_parser().format_help()
    with pytest.raises(SystemExit) as done:
        bench.main(["launch", "--help"])
    assert done.value.code == 0 and "--rounds" in capsys.readouterr().out
