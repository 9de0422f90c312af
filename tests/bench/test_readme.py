"""README blocks are rewritten from bench figures between their markers, with when, where and at what load."""
from __future__ import annotations

import pytest

from bench import readme
from tests.bench.test_bench import _figures

MACHINE = {"date": "2026-12-01 10:00", "cpu": "AMD EPYC", "cores": 2, "available_cores": 2, "threads": 2,
           "torch": "2.13.0"}


def test_replace_block_keeps_the_rest_and_needs_markers():
    text = "intro\n<!-- bench:performance:start -->\nold\n<!-- bench:performance:end -->\noutro\n"
    new = readme.replace_block(text, "performance", "new table")
    assert new == "intro\n<!-- bench:performance:start -->\nnew table\n<!-- bench:performance:end -->\noutro\n"
    assert readme.replace_block(new, "performance", "again").count("bench:performance:start") == 1
    with pytest.raises(ValueError):
        readme.replace_block(text, "demo", "x")


def test_performance_block_says_where_when_and_every_figure():
    block = readme.performance_block(_figures(), MACHINE)
    for text in ("`python -m bench --write-readme`", "2026-12-01 10:00", "AMD EPYC, 2 cores", "2 threads pinned",
                 "load average 1.0 at start and 1.2 at end", "2.50x", "same initial LoRA weights", "0.99% apart",
                 "40% (0%) | TRL 40% (0%)", "identical 8/8", "warm 3.0 s", "4.0 s idle", "1.05x", "adaptive thread count"):
        assert text in block, text


def test_demo_and_levers_blocks():
    demo = {"train_s": 80.0, "first_loss_s": 5.0, "steps": 80, "compare_s": 12.0, "total_s": 92.0, "bleu_base": 0.3,
            "bleu_tuned": 45.0, "chrf_base": 20.0, "chrf_tuned": 70.0, "exact_base": 0, "exact_tuned": 12, "n_test": 24,
            "peak_rss_gb": 2.5, "load_start": 0.5, "load_end": 0.7, "bleu_gain": 44.7, "bleu_ci": [30.1, 58.0],
            "tally": [20, 3, 1], "repeats": [{"total_s": 92.0}, {"total_s": 93.0}], "same_every_run": True,
            "gemm_gflops": 75.3}
    block = readme.demo_block(demo, MACHINE)
    assert "fp32 GEMM rate at the start: 75 GFLOP/s" in block
    assert "train 80.0 s" in block and "0.3 -> 45.0 (95% CI of the change +30.1 to +58.0)" in block
    assert "20 better, 3 the same, 1 worse" in block and "the same answers and numbers every time (totals 92 s, 93 s)" in block
    assert "FAIL train + compare <= 90 s (first run)" in block and "PASS 95% interval of the gain above +20" in block
    docs = {**demo, "preset": "product-docs-cpu", "graded_base": {"right": 0, "facts": 50, "declined": 0, "off_topic": 6,
            "refused": 0, "wrong": 50}, "graded": {"right": 27, "facts": 50, "declined": 5, "off_topic": 6,
            "refused": 0, "wrong": 23}}
    block = readme.demo_block(docs, MACHINE)
    assert "`python -m bench demo --preset product-docs-cpu --write-readme`" in block
    assert "the right fact in 0/50 answers before and 27/50 after" in block and "declined 0/6 -> 5/6" in block
    levers = {"load_start": 1.0, "load_end": 1.0,
              "train": {"default": {"tokens_per_second": 100.0, "default_speedup": 1.0, "tokens_per_cpu_second": 60.0,
                                    "default_cpu_speedup": 1.0},
                        "full-vocabulary head": {"tokens_per_second": 50.0, "default_speedup": 2.0,
                                                 "tokens_per_cpu_second": 30.0, "default_cpu_speedup": 2.0}},
              "generation": {"default": {"seconds": 3.0, "vs_default": 1.0, "same_answers": True}, "_prompts": 8}}
    block = readme.levers_block(levers, MACHINE)
    assert "| full-vocabulary head | 50.0 | 2.00x | 30.0 | 2.00x |" in block and "| default | 3.00 | 1.00x | True |" in block


def test_the_readme_has_every_block():
    text = readme.README.read_text(encoding="utf-8")
    for name in ("performance", "demo", "demo-docs", "levers", "probe"):
        assert f"<!-- bench:{name}:start -->" in text and f"<!-- bench:{name}:end -->" in text


def test_probe_block():
    figures = {"seconds": {"studio@16": 30.5, "lm-eval@16": 61.0}, "speedup_vs_lm_eval": {"16": 2.0},
               "base_accuracy": {"arithmetic": 0.7, "reading": 0.8}, "base_overall": 0.75, "items": 80,
               "same_answers": True, "load1": 1.2}
    block = readme.probe_block(figures, MACHINE)
    assert "| arithmetic | 70.0% |" in block and "| all 80 items | 75.0% |" in block
    assert "batch 16: 30.5 s, 2.00x faster than plain lm-eval" in block and "`python -m bench probe --write-readme`" in block
