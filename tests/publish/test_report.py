"""The stakeholder report: self-contained, escaped HTML and a Markdown twin, written from a run folder."""
from __future__ import annotations

import re

import pytest

from studio.errors import RunError
from studio.evaluate.comparison import save_comparison
from studio.publish.markdown import cell
from studio.publish.report import render_html, render_markdown, write_report
from studio.publish.svg import Series, line_chart, nice_ticks
from studio.runs import RunFolder, create_run, update_run
from studio.settings import StudioSettings
from tests.builders import sample_comparison, write_old_comparison

RUN = {"run_id": "20250101-120000-abcdef", "base_model": "embedded:gemma-3-270m", "dataset": "sample:word_tasks",
       "template": "alpaca", "created": "2025-01-01T12:00:00", "status": "completed", "final_loss": 0.41,
       "step": 3, "train_seconds": 95.0}
HISTORY = [{"step": 1, "loss": 2.5, "learning_rate": 3e-4}, {"step": 2, "loss": 1.2, "learning_rate": 2e-4},
           {"step": 3, "loss": 0.41, "learning_rate": 1e-4}, {"step": 3, "eval_loss": 0.7}]


def script_comparison():
    """The sample comparison with an instruction that tries to inject a script."""
    comparison = sample_comparison()
    comparison.rows[1].instruction = "<script>alert('x')</script> & reverse"
    return comparison


def test_html_shows_the_numbers_and_settings():
    html = render_html(RUN, StudioSettings().to_dict(), HISTORY, sample_comparison())
    assert "BLEU 2.1</span> → 71.4" in html
    for text in ("15.0", "80.2", "0%", "50%", "+69.3", "embedded:gemma-3-270m", "sample:word_tasks",
                 "20250101-120000-abcdef", "2025-01-01 12:00", "learning_rate", "0.001", "max_new_tokens"):
        assert text in html, text
    assert "<svg" in html and "<polyline" in html and "<details>" in html
    assert "Biggest gains" in html and "Got worse" in html


def test_html_escapes_user_text_and_is_self_contained():
    html = render_html(RUN, StudioSettings().to_dict(), HISTORY, script_comparison())
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; reverse" in html
    assert "&lt;b&gt;" in html  # the first instruction's "<b>" too
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"<link|@import|url\(", html, re.IGNORECASE)


def test_html_without_history_or_regressions():
    comparison = sample_comparison()
    comparison.rows = comparison.rows[:1]
    html = render_html(RUN, StudioSettings().to_dict(), [], comparison)
    assert "No loss logged" in html and "No example got worse." in html


def test_markdown_tables():
    md = render_markdown(RUN, StudioSettings().to_dict(), HISTORY, script_comparison())
    assert "## BLEU 2.1 → 71.4" in md
    assert "| Metric | Base | Tuned | Change |" in md and "| BLEU | 2.1 | 71.4 | +69.3 |" in md
    assert "| 3 | 0.4100 | 0.7000 |" in md  # loss sampled by step, eval loss alongside
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "| r | 16 |" in md and "### Generation" in md


def test_markdown_escapes_user_text_with_the_one_markdown_escaper():
    comparison = sample_comparison()
    comparison.rows[0].tuned = "# Not a heading | not a cell *not bold*"
    md = render_markdown(RUN, StudioSettings().to_dict(), HISTORY, comparison)
    assert cell(comparison.rows[0].tuned) == "\\# Not a heading \\| not a cell \\*not bold\\*"
    assert cell(comparison.rows[0].tuned) in md
    assert "| # Not a heading" not in md and "<br># " not in md


def test_report_says_how_sure_the_gain_is_and_how_answers_were_cut():
    html = render_html(RUN, StudioSettings().to_dict(), HISTORY, sample_comparison())
    assert '<p class="verdict">+69.3 [95% CI +40.5, +95.2], significant</p>' in html
    assert "Tuning improved BLEU by +69.3 points, a significant gain on 2 held-out examples." in html
    assert "[95% CI -10.0, +90.0] · not significant" in html and ">ROUGE-L<" in html
    assert "Per example: 1 better, 0 the same, 1 worse by sentence BLEU." in html
    assert "Answers cut at the first &quot;\\n### &quot; or at &lt;eos&gt;, the same rule for base and tuned" in html
    assert "Raw continuations, before the cut" in html and "dog dog\n### Input:\ncat" in html
    md = render_markdown(RUN, StudioSettings().to_dict(), HISTORY, sample_comparison())
    assert "| Metric | Base | Tuned | Change | 95% CI of the change | Verdict |" in md
    assert "| BLEU | 2.1 | 71.4 | +69.3 | +40.5 to +95.2 | significant |" in md
    assert "| chrF | 15.0 | 80.2 | +65.2 | -10.0 to +90.0 | not significant |" in md
    assert "- 1 better, 0 the same, 1 worse by sentence BLEU" in md and "- Answers cut at the first" in md
    assert "| Base, raw | dog dog<br>\\#\\#\\# Input:<br>cat |   |" in md  # "#" escaped: no heading inside a cell
    assert "| Tuned, raw | DOG&lt;eos&gt; |   |" in md


def test_report_of_a_comparison_saved_by_an_older_version(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    write_old_comparison(run.path)
    html_path, md_path = write_report(run.path)
    html, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    assert "BLEU 0.3</span> → 43.7" in html and "(no confidence interval)" in html and "not recorded" in html
    assert "Raw continuations" not in html and ">ROUGE-L<" not in html
    assert "| BLEU | 0.3 | 43.7 | +43.4 | - | - |" in md


def test_svg_chart_axes_and_single_point():
    svg = line_chart([Series("loss", [(1.0, 2.0)], "#000")], x_label="step", y_label="loss")
    assert svg.count("<circle") == 1 and "<polyline" not in svg and ">step<" in svg
    assert nice_ticks(0, 2.1) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def test_write_report_from_a_run_folder(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    with pytest.raises(RunError, match="Run the comparison first"):
        write_report(run.path)
    for record in HISTORY:
        RunFolder(run.path).append_metric(record)
    update_run(run.path, status="completed", final_loss=0.41)
    save_comparison(run.path, sample_comparison())
    html_path, md_path = write_report(run.path)
    assert html_path == run.path / "report.html" and md_path == run.path / "report.md"
    html = html_path.read_text(encoding="utf-8")
    assert run.run_id in html and "71.4" in html and "final train loss 0.410" in html
    assert "| BLEU | 2.1 | 71.4 | +69.3 |" in md_path.read_text(encoding="utf-8")


def test_report_shows_the_answer_loss_the_answer_length_and_the_cut_count():
    from studio.evaluate.answer_loss_record import ExampleLoss, summarise

    comparison = sample_comparison()
    comparison.answer_loss = summarise([ExampleLoss(0, 5, 2.0, 1.0), ExampleLoss(1, 7, 2.5, 1.2)])
    comparison.answer_length, comparison.answer_length_reason = 8, "answers up to 8 tokens: all 2 references fit."
    comparison.rows[0].base_cut, comparison.rows[0].tuned_cut = True, False
    comparison.rows[1].base_cut, comparison.rows[1].tuned_cut = True, True
    html = render_html(RUN, StudioSettings().to_dict(), HISTORY, comparison)
    assert ">Answer perplexity<" in html and "By answer loss: 2 better, 0 the same, 0 worse." in html
    assert "Answers up to 8 tokens: all 2 references fit." in html
    assert "2 of 2 base and 1 of 2 tuned answers were cut at 8 tokens." in html
    md = render_markdown(RUN, StudioSettings().to_dict(), HISTORY, comparison)
    assert "| Answer perplexity | 9.9 | 3.1 | -6.8 |" in md and "- By answer loss: 2 better" in md


def test_report_shows_the_prompt_only_baseline_or_why_it_did_not_run():
    from studio.evaluate.baseline_record import score_baseline, skipped
    from studio.evaluate.generation import Answer

    comparison = sample_comparison()
    answers = [Answer("dog", "dog", 1, "eos"), Answer("go", "go", 1, "eos")]
    comparison.baseline = score_baseline(comparison.rows, answers, 3, "3-shot: why", [0, 1, 2], limit=8)
    html = render_html(RUN, StudioSettings().to_dict(), HISTORY, comparison)
    md = render_markdown(RUN, StudioSettings().to_dict(), HISTORY, comparison)
    pattern = r"Prompting alone \(3-shot\): BLEU [\d.]+; tuned [\d.]+, [+-][\d.]+"
    assert re.search(pattern, html) and re.search(r"- " + pattern, md)
    comparison.baseline = skipped("Prompting alone was not measured: it is turned off.")
    assert "Prompting alone was not measured: it is turned off" in render_html(RUN, StudioSettings().to_dict(),
                                                                               HISTORY, comparison)


def _judged(run_dir, opponent: str = "base"):
    """A judge.json in which the tuned answer wins both orders of every pair of the sample comparison."""
    from studio.evaluate.judge_record import JudgeResult, Verdict, save_judge

    verdicts = [Verdict(i, order, "", "A" if order == "tuned_first" else "B")
                for i in (0, 1) for order in ("opponent_first", "tuned_first")]
    save_judge(run_dir, JudgeResult("a judge", "fake", "", opponent, verdicts, 0.7, planned=2))


def test_a_saved_judging_joins_the_report_headline(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    save_comparison(run.path, sample_comparison())
    _judged(run.path)
    html, md = (p.read_text(encoding="utf-8") for p in write_report(run.path))
    sentence = "A judge preferred the tuned answer over the base one in 100% [95% CI 100%, 100%] of 2 pairs"
    assert sentence in html and "**Tuning improved BLEU by +69.3 points" in md and sentence in md
    assert "Judge: tuned won 2, 0 ties, 0 lost of 2 pairs against the base model." in html
    RunFolder(run.path).judge_file.write_text("{not json", encoding="utf-8")  # unreadable: the rest still stands
    assert "A judge" not in write_report(run.path)[0].read_text(encoding="utf-8")


def test_per_example_counts_the_baseline_and_the_judge_leave_out_rows_that_repeat_a_training_prompt(runs_dir):
    from studio.evaluate.answer_loss_record import ExampleLoss, summarise
    from studio.evaluate.baseline_record import score_baseline
    from studio.evaluate.generation import Answer

    comparison = sample_comparison()
    comparison.answer_loss = summarise([ExampleLoss(0, 5, 2.0, 1.0), ExampleLoss(1, 7, 2.5, 2.6)])
    answers = [Answer("DOG", "DOG", 1, "eos"), Answer("go", "go", 1, "eos")]
    comparison.baseline = score_baseline(comparison.rows, answers, 2, "2-shot")
    comparison.rows[0].overlap, comparison.rows[1].overlap = "exact", ""
    comparison.overlap = {"flags": ["exact", ""], "rule": "r"}
    run = create_run(runs_dir, StudioSettings())
    save_comparison(run.path, comparison)
    _judged(run.path, opponent="baseline")
    html = write_report(run.path)[0].read_text(encoding="utf-8")
    assert "By answer loss: 0 better, 0 the same, 1 worse." in html  # row 1 only
    assert "Prompting alone (2-shot): BLEU 0.0; tuned 0.0" in html  # "go" and "dgo" against "god"
    assert "over the prompt-only baseline&#x27;s in 100% of 1 pairs" in html
    assert "1 held-out prompt that repeats or nearly repeats a training prompt is left out of the headline" in html


def test_a_judging_of_answers_a_newer_comparison_replaced_is_left_out(runs_dir):
    import os

    from studio.publish.report import saved_judge

    run = create_run(runs_dir, StudioSettings())
    save_comparison(run.path, sample_comparison())
    _judged(run.path)
    assert saved_judge(run.path, sample_comparison())["pairs"] == 2
    later = RunFolder(run.path).judge_file.stat().st_mtime + 5
    os.utime(RunFolder(run.path).comparison_file, (later, later))  # compared again after the judge
    assert saved_judge(run.path, sample_comparison()) is None
