"""The before/after in words (studio.publish.scorecard): intervals, verdicts, the tally and the cut note."""
from __future__ import annotations

import dataclasses

from studio.evaluate.comparison import Change, Tally, load_comparison
from studio.publish import scorecard
from studio.runs import create_run
from studio.settings import StudioSettings
from tests.builders import sample_comparison, write_old_comparison


def test_each_metric_with_its_interval_and_verdict():
    lines = {m.key: m for m in scorecard.metric_lines(sample_comparison())}
    assert list(lines) == ["bleu", "chrf", "rouge_l", "exact_match"]
    assert lines["bleu"].text() == "BLEU 2.1 -> 71.4, +69.3 [95% CI +40.5, +95.2], significant"
    assert lines["chrf"].text("→") == "chrF 15.0 → 80.2, +65.2 [95% CI -10.0, +90.0], not significant"
    assert lines["exact_match"].text() == "Exact match 0% -> 50%, +50.0 [95% CI +0.0, +100.0], not significant"
    assert lines["bleu"].cells() == ["BLEU", "2.1", "71.4", "+69.3", "+40.5 to +95.2", "significant"]


def test_headline_says_whether_the_gain_is_significant():
    cmp = sample_comparison()
    assert scorecard.headline(cmp) == "Tuning improved BLEU by +69.3 points, a significant gain on 2 held-out examples."
    cmp.changes["bleu"] = Change(50.0, 40.0, -10.0, -20.0, -1.0)
    assert scorecard.headline(cmp).startswith("Tuning lowered BLEU by -10.0 points, a significant loss")
    cmp.changes["bleu"] = Change(50.0, 52.0, 2.0, -3.0, 7.0)
    assert "the 95% interval includes 0: not a significant change" in scorecard.headline(cmp)
    cmp.changes["bleu"] = Change(0.0, 100.0, 100.0)
    assert scorecard.headline(cmp).endswith("(no confidence interval).")


def test_tally_and_cut_note():
    cmp = sample_comparison()
    assert scorecard.tally_text(cmp) == "1 better, 0 the same, 1 worse by sentence BLEU"
    assert scorecard.cut_note(cmp) == ('Answers cut at the first "\\n### " or at <eos>, the same rule for base and '
                                       "tuned; the raw continuations are kept.")
    cmp = dataclasses.replace(cmp, stop_strings=[], eos_tokens=["<eos>", "<end_of_turn>"], tally=Tally(3, 1, 0))
    assert scorecard.cut_note(cmp).startswith("Answers cut at <eos> or <end_of_turn> only (the template has no stop")
    assert "paired bootstrap, 1000 resamples" in scorecard.method_note(cmp)


def test_an_old_comparison_reads_without_intervals(runs_dir):
    run_dir = create_run(runs_dir, StudioSettings()).path
    write_old_comparison(run_dir)
    old = load_comparison(run_dir)
    lines = scorecard.metric_lines(old)
    assert [m.key for m in lines] == ["bleu", "chrf", "exact_match"]  # no ROUGE-L measured then
    assert lines[0].text() == "BLEU 0.3 -> 43.7, +43.4" and lines[0].cells()[4:] == ["-", "-"]
    assert lines[2].text() == "Exact match 0% -> 50%, +50.0"
    assert scorecard.headline(old).endswith("(no confidence interval).") and scorecard.tally_text(old) == ""
    assert "not recorded" in scorecard.cut_note(old) and "No confidence intervals" in scorecard.method_note(old)
