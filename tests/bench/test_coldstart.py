"""`python -m bench coldstart` (bench/coldstart.py): its table, verdict and the hook in bench/main.py."""
from __future__ import annotations

import pytest

from bench import main as bench
from bench.coldstart import TARGET_FIRST_LOSS_S, coldstart_table

RUN = {"page_ready_s": 4.6, "train_pressed_s": 5.2, "cache_ready_s": 30.1, "phases": {"tokenizer": 6.0},
       "first_loss_s": 38.4, "load_start": 0.3, "load_end": 1.9}


def test_the_table_reads_cold_and_warm_side_by_side_with_the_load():
    figures = {"cpu_count": 2, "cold": RUN, "warm": {**RUN, "cache_ready_s": None, "first_loss_s": 9.6},
               "cold_vs_warm_first_loss": 4.0,
               "verdict": {f"first loss point <= {TARGET_FIRST_LOSS_S:.0f} s after launch, cold": True}}
    table = coldstart_table(figures)
    assert "  cold           4.6         30.1        38.4   0.30 -> 1.90 on 2 cores" in table
    assert "  warm           4.6            -         9.6" in table
    assert "4.00x a warm one" in table and "PASS  first loss point <= 70 s after launch, cold" in table


def test_the_bench_dispatches_coldstart_with_its_own_options(capsys):
    with pytest.raises(SystemExit) as done:
        bench.main(["coldstart", "--help"])
    assert done.value.code == 0 and "--cold-only" in capsys.readouterr().out
