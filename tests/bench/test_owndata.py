"""`python -m bench owndata`: the own-data flow through the command line's own code path, its figures, targets and
README block (a tiny model; the timings that the targets judge are faked)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bench import owndata, readme
from studio import runs
from studio.data.dataset import load_source
from studio.evaluate.comparison import load_comparison
from tests.tiny import tiny_loader

MACHINE = {"date": "2026-12-06 10:00", "cpu": "AMD EPYC", "cores": 2, "available_cores": 2, "threads": 2,
           "torch": "2.13.0"}
TINY = ["train.max_steps=2", "data.max_test_examples=4", "generation.max_new_tokens=4", "train.threads=1",
        "generation.answer_budget_seconds=5", "generation.baseline_budget_seconds=5"]


def test_the_real_file_is_alpaca_evals_805_long_answers():
    loaded = load_source(str(owndata.DATA))
    assert loaded.shape.name == "alpaca" and len(loaded.examples) == 805
    assert all(not e.input for e in loaded.examples)
    words = sorted(len(e.output.split()) for e in loaded.examples)
    assert 40 <= words[len(words) // 2] <= 70  # answers of about 50 words: long, free-form


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[dict, Path]:
    """One own-data run of a small long-answer file (the real file's first 40 rows) through the command line."""
    tmp = tmp_path_factory.mktemp("owndata")
    rows = json.loads(gzip.decompress(owndata.DATA.read_bytes()))[:40]
    data = tmp / "first40.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    return owndata.run_owndata(data, tmp / "runs", TINY, model_loader=tiny_loader), tmp / "runs"


def test_the_bench_reads_every_figure_of_the_command_lines_run(ran):
    figures, root = ran
    assert figures["total_s"] >= figures["train_s"] >= 0 and figures["compare_s"] >= 0  # whole seconds, as printed
    parts = figures["compare_parts_s"]
    assert set(parts) == {"answer_loss", "base", "tuned", "baseline", "other"}
    assert parts["answer_loss"] > 0 and parts["base"] > 0 and parts["tuned"] > 0
    assert figures["n_compared"] == 4 and figures["cut"]["tuned"][1] == 4 and figures["answer_length"] >= 4
    assert figures["answer_length_reason"] and figures["headline"]
    assert figures["perplexity"]["base"] > 0 and figures["perplexity"]["low"] is not None
    assert figures["run_id"] == runs.list_runs(root)[0].run_id and figures["budget_line"] == ""  # max_steps: no subset
    assert set(figures["verdicts"]) == set(owndata.owndata_verdicts(figures))
    json.dumps(figures, default=float)  # the closing JSON line


def test_targets_judge_the_times_and_the_cut_answers(ran):
    _, root = ran
    result = load_comparison(runs.list_runs(root)[0].path)
    fast = owndata.owndata_figures(result, train_s=300.0, total_s=500.0, budget="Training on 200 of 757 ...")
    slow = owndata.owndata_figures(result, train_s=400.0, total_s=700.0, budget="")
    assert fast["compare_s"] == 200.0 and slow["compare_s"] == 300.0
    total = "train + Compare <= 10 minutes"
    assert owndata.owndata_verdicts(fast)[total] is True and owndata.owndata_verdicts(slow)[total] is False
    cut, n, _ = fast["cut"]["tuned"]
    target = "<= 10% of tuned answers cut by the length limit"
    assert owndata.owndata_verdicts(fast)[target] is (cut <= 0.1 * n)
    fast["cut"]["tuned"] = [4, 40, 0]  # 4 of 40 cut
    assert owndata.owndata_verdicts(fast)[target] is True
    fast["cut"]["tuned"] = [5, 40, 5]  # 5 of 40 cut, all looping: loops count as cut
    assert owndata.owndata_verdicts(fast)[target] is False
    fast["compare_parts_s"]["answer_loss"] = 30.0  # 30 s on top of the other 170 s: more than 10%
    assert owndata.owndata_verdicts(fast)["answer loss adds <= 10% to Compare's time"] is False
    fast["compare_parts_s"]["answer_loss"] = 10.0
    assert owndata.owndata_verdicts(fast)["answer loss adds <= 10% to Compare's time"] is True


def test_the_printed_lines_are_parsed_as_the_command_line_prints_them():
    out = ("Training on 388 of 757 training rows to fit the 4.5-minute training budget (...); --budget-minutes 0 "
           "uses all.\nstep 1/2\n  time        train 212 s, total 481 s\n")
    assert owndata.printed_times(out) == (212.0, 481.0)
    assert owndata.budget_line(out).startswith("Training on 388 of 757 training rows")
    with pytest.raises(ValueError):
        owndata.printed_times("no time line")


def test_write_readme_fills_the_owndata_block(ran, tmp_path):
    figures, _ = ran
    figures = {**figures, "train_s": 250.0, "total_s": 540.0, "compare_s": 290.0}
    block = owndata.owndata_block(figures, MACHINE)
    for text in ("`python -m bench owndata --write-readme`", "AMD EPYC, 2 cores", "train 250.0 s + Compare 290.0 s",
                 "answer loss ", "Answer perplexity: ", "Headline: ", "Cut at the length limit: base ",
                 "PASS train + Compare <= 10 minutes", "Subset: every row fit the time budget"):
        assert text in block, text
    page = tmp_path / "README.md"
    page.write_text("a\n<!-- bench:owndata:start -->\nold\n<!-- bench:owndata:end -->\nb\n", encoding="utf-8")
    readme.write_block("owndata", block, page)
    assert "old" not in page.read_text() and "train 250.0 s" in page.read_text()


def test_the_readme_has_the_owndata_block():
    assert "<!-- bench:owndata:start -->" in readme.README.read_text(encoding="utf-8")


def test_the_loop_guard_check_answers_once_more_without_it(ran, tmp_path):
    import shutil

    from studio.pipeline import compare_run, open_run
    from studio.settings import GenerationSettings

    figures, root = ran
    run_id = runs.list_runs(root)[0].run_id
    shutil.copytree(root, tmp_path / "runs")  # the module's run stays as the other tests read it
    rm = open_run(tmp_path / "runs", run_id, model_loader=tiny_loader)
    result = compare_run(rm, GenerationSettings(max_new_tokens=72, max_new_tokens_auto=False, baseline_shots=0),
                         limit=4)
    check = owndata.guard_check(tmp_path / "runs", run_id, result, tiny_loader)
    guarded = result.cut_count("tuned")
    assert check["penalty"] == {"off": 1.0, "on": 1.15} and check["chrf"]["on"] == result.tuned.chrf
    assert check["cut"]["on"] == [guarded.cut, guarded.total, guarded.looped] and check["cut"]["off"][1] == 4
    line = next(x for x in owndata.owndata_lines({**figures, "loop_guard": check}) if x.startswith("Loop guard"))
    assert line.startswith("Loop guard: the same tuned model without it, repetition penalty 1: ")
    assert "with it (Compare's answers) repetition penalty 1.15: " in line
    unguarded = {k: v for k, v in figures.items() if k != "loop_guard"}  # short answers: no guard, no line
    assert not any(x.startswith("Loop guard") for x in owndata.owndata_lines(unguarded))


def test_the_head_check_reads_the_loss_afresh_in_fp32_and_in_compares_arithmetic(ran):
    figures, _ = ran
    head = figures["head"]
    precision = head["precision"]  # the tiny model on a CPU with native bf16 reads in bf16 (auto), else fp32
    assert set(head) == {"precision", "fp32", precision, "gap", "flops", "head_flops", "gemm_flops_per_second",
                         "bf16_gemm_flops_per_second"}
    assert all(head[p]["seconds"] > 0 for p in ("fp32", precision))
    assert head[precision]["perplexity"] == pytest.approx([figures["perplexity"]["base"],
                                                           figures["perplexity"]["tuned"]], rel=1e-3)
    gap = head["gap"]
    assert 0 <= gap["corpus"] <= gap["max"] < 0.05 and gap["sd"] <= gap["max"]
    # Compare's fp32 reading on the caches is fp32 afresh up to summation order; a bf16 one is not the same numbers.
    assert gap["max"] < 1e-4 if precision == "fp32" else gap["max"] > 0
    assert head["flops"] > head["head_flops"] > 0 and head["gemm_flops_per_second"] > 0
    assert head["bf16_gemm_flops_per_second"] > 0
    line = next(x for x in owndata.owndata_lines(figures) if x.startswith("Answer loss, the same run once more: "))
    assert "read afresh (prompt + answer, no generation) with the model's own fp32 weights in " in line
    assert f"Compare read it on generation's prompt caches, the answers alone, in {precision}, in " in line
    assert "x faster than fp32 afresh; its per-example losses lie within " in line
    assert " TFLOP (" in line and "% of it the output head)" in line and "% of the rest of Compare" in line
    assert "at fp32's " in line and "at bf16's " in line
    unchecked = {k: v for k, v in figures.items() if k != "head"}
    assert not any(x.startswith("Answer loss") for x in owndata.owndata_lines(unchecked))


def test_the_reading_check_reads_the_compared_prompts_padded_and_by_length_group(ran):
    figures, _ = ran
    reading = figures["reading"]
    low, high = reading["lengths"]
    assert 0 < low < high and reading["tokens"] >= low * figures["n_compared"]
    assert reading["tokens"] <= reading["grouped"]["tokens"] <= reading["padded"]["tokens"] == 4 * high
    assert reading["grouped"]["seconds"] > 0 and reading["padded"]["seconds"] > 0 and reading["estimate_s"] > 0
    line = next(x for x in owndata.owndata_lines(figures) if x.startswith("Reading the prompts"))
    assert f"4 prompts of {low}-{high} tokens" in line and "as Compare reads them (a shared start once" in line
    assert "x faster; the budget counted " in line
    unchecked = {k: v for k, v in figures.items() if k != "reading"}
    assert not any(x.startswith("Reading the prompts") for x in owndata.owndata_lines(unchecked))
