"""The Compare tab's pure renderers (ui.compare_view): score cards with intervals, the raw answers, the table."""
from __future__ import annotations

from studio.evaluate.comparison import load_comparison
from studio.runs import create_run
from studio.settings import StudioSettings
from tests.builders import sample_comparison, write_old_comparison
from ui.compare_view import comparison_frame, raw_answers_html, score_cards_html


def test_score_cards_show_each_change_with_its_interval_and_verdict():
    html = score_cards_html(sample_comparison())
    assert '<p class="compare-headline good">Tuning improved BLEU by +69.3 points' in html
    assert ('<div class="card big wide good"><div class="label">BLEU</div><div class="value"><span class="before">'
            '2.1</span> → 71.4</div><div class="sub">+69.3 [95% CI +40.5, +95.2]</div>'
            '<span class="badge">significant</span>') in html
    assert '<div class="sub">+65.2 [95% CI -10.0, +90.0]</div><span class="badge">not significant</span>' in html
    assert ">1 · 0 · 1<" in html and "better · same · worse, by sentence BLEU" in html
    assert "Answers cut at the first &quot;\\n### &quot; or at &lt;eos&gt;" in html


def test_raw_answers_say_how_each_answer_ended_and_escape_the_text():
    html = raw_answers_html(sample_comparison())
    assert html.count("<details>") == 2 and html.index("Uppercase &lt;b&gt;") < html.index("Reverse")  # by gain
    assert "base: cut at &quot;\\n### &quot;" in html and "tuned: ended with &lt;eos&gt;" in html
    assert "base: ran to the token limit" in html and "<pre>dog dog\n### Input:\ncat</pre>" in html


def test_a_comparison_saved_by_an_older_version_renders(runs_dir):
    run_dir = create_run(runs_dir, StudioSettings()).path
    write_old_comparison(run_dir)
    old = load_comparison(run_dir)
    html = score_cards_html(old)
    assert "(no confidence interval)" in html and "badge" not in html and "ROUGE-L" not in html
    assert "saved without raw continuations" in raw_answers_html(old)
    assert comparison_frame(old)["Change"].tolist() == [100.0, 0.0]


def test_a_note_when_the_saved_comparison_is_of_another_adapter():
    from ui.compare_view import adapter_note_html

    assert adapter_note_html(None, None) == "" and adapter_note_html(40, 40) == ""
    assert "is of the run's final adapter; the run now uses its step-40 snapshot" in adapter_note_html(None, 40)
    assert "is of the run's step-40 snapshot; the run now uses its final adapter" in adapter_note_html(40, None)


def _with_answer_loss(cmp, long: bool = False):
    from studio.evaluate.answer_loss_record import ExampleLoss, summarise

    cmp.answer_loss = summarise([ExampleLoss(0, 5, 2.0, 1.0), ExampleLoss(1, 7, 2.5, 1.2)])
    cmp.answer_length, cmp.answer_length_reason = 8, "answers up to 8 tokens: all 2 references fit."
    cmp.rows[0].base_cut, cmp.rows[0].tuned_cut = True, False
    cmp.rows[1].base_cut, cmp.rows[1].tuned_cut = False, False
    if long:
        for row in cmp.rows:
            row.reference = " ".join(["word"] * 40)
    return cmp


def test_the_big_card_is_the_headline_metric_and_cut_answers_are_marked():
    short = _with_answer_loss(sample_comparison())
    html = score_cards_html(short)
    assert html.count('class="card big') == 1 and '<div class="card big wide good"><div class="label">BLEU<' in html
    assert ">Answer perplexity<" in html and ">Per example (answer loss)<" in html and ">2 · 0 · 0<" in html
    assert "1 of 2 base answers was cut at 8 tokens." in html
    assert '<p class="cut-note answer-length">Answer length: Answers up to 8 tokens: all 2 references fit.</p>' in html
    frame = comparison_frame(short)
    row = frame[frame["Instruction"] == "Uppercase <b> Input: dog"].iloc[0]
    assert row["Base answer"] == "dog dog [cut at 8 tokens]" and row["Tuned answer"] == "DOG"
    long = score_cards_html(_with_answer_loss(sample_comparison(), long=True))
    assert '<div class="card big wide good"><div class="label">Answer perplexity<' in long
    assert long.index(">Answer perplexity<") < long.index(">BLEU<")


def test_an_old_comparison_has_no_marks_and_no_answer_length(runs_dir):
    run_dir = create_run(runs_dir, StudioSettings()).path
    write_old_comparison(run_dir)
    old = load_comparison(run_dir)
    assert "cut at" not in " ".join(comparison_frame(old)["Base answer"]) and "answer-length" in score_cards_html(old)


def test_the_scores_show_the_prompt_only_baseline_beside_base_and_tuned():
    from studio.evaluate.baseline_record import score_baseline
    from studio.evaluate.generation import Answer

    cmp = sample_comparison()
    cmp.baseline = score_baseline(cmp.rows, [Answer("dog", "", 1, "eos"), Answer("go", "", 1, "eos")], 2, "r")
    html = score_cards_html(cmp)
    assert "Prompting alone (2-shot)" in html and f"BLEU {cmp.baseline.scores.bleu:.1f}" in html
    assert "Prompting alone (2-shot): BLEU " in html and "; tuned " in html


def test_the_table_has_a_baseline_column_and_marks_rows_that_repeat_a_training_prompt():
    from studio.evaluate.baseline_record import score_baseline
    from studio.evaluate.generation import Answer
    from ui.compare_view import COLUMNS

    cmp = sample_comparison()
    assert list(comparison_frame(cmp).columns) == COLUMNS  # no baseline: the usual columns
    cmp.baseline = score_baseline(cmp.rows, [Answer("dog", "", 1, "eos"), Answer("go go", "", 8, None)], 2, "r",
                                  limit=8)
    cmp.rows[1].overlap, cmp.rows[0].overlap = "near", ""
    frame = comparison_frame(cmp)
    assert list(frame.columns) == [*COLUMNS[:4], "Prompting alone (2-shot)", *COLUMNS[4:]]
    first, second = frame.iloc[0], frame.iloc[1]  # by BLEU change: Uppercase first
    shots = "Prompting alone (2-shot)"
    assert first[shots] == "dog" and second[shots] == "go go [cut at 8 tokens]"
    assert first["Instruction"] == "Uppercase <b> Input: dog"
    assert second["Instruction"] == "Reverse [nearly repeats a training prompt, left out of the headline]"
    cmp.generation["include_overlap"] = True
    assert comparison_frame(cmp).iloc[1]["Instruction"] == "Reverse [nearly repeats a training prompt]"


def test_a_judge_joins_the_headline_and_the_cards_over_the_rows_the_headline_scores():
    from studio.evaluate.judge_record import JudgeResult, Verdict
    from studio.publish.scorecard import headline_judge

    cmp = sample_comparison()
    verdicts = [Verdict(i, order, "A", "A" if order == "tuned_first" else "B")
                for i in (0, 1) for order in ("opponent_first", "tuned_first")]
    result = JudgeResult("j", "fake", "", "base", verdicts, 0.7, planned=2)
    judge = headline_judge(cmp, result)
    html = score_cards_html(cmp, judge)
    assert "A judge preferred the tuned answer over the base one in 100%" in html and "of 2 pairs" in html
    assert ">Judge: tuned vs base<" in html and ">100%<" in html
    assert ">Judge" not in score_cards_html(cmp) and "A judge" not in score_cards_html(cmp)
    cmp.rows[1].overlap = "exact"  # left out of the headline: its pair is left out of the judge's figures too
    clean = headline_judge(cmp, result)
    assert clean["pairs"] == 1 and "of 1 pairs" in score_cards_html(cmp, clean)
    weak = {**judge, "agreement": 0.5, "trusted": False}
    assert ">Judge" not in score_cards_html(cmp, weak) and "too weak to trust" in score_cards_html(cmp, weak)
