"""The before/after in words (studio.publish.scorecard, with its notes and marks in studio.publish.marks): intervals,
verdicts, the tally and the cut note."""
from __future__ import annotations

import dataclasses

from studio.evaluate.change import Change, Tally
from studio.evaluate.comparison import load_comparison
from studio.publish import marks, scorecard
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
    assert marks.cut_note(cmp) == ('Answers cut at the first "\\n### " or at <eos>, the same rule for base and '
                                   "tuned; the raw continuations are kept.")
    cmp = dataclasses.replace(cmp, stop_strings=[], eos_tokens=["<eos>", "<end_of_turn>"], tally=Tally(3, 1, 0))
    assert marks.cut_note(cmp).startswith("Answers cut at <eos> or <end_of_turn> only (the template has no stop")
    assert "paired bootstrap, 1000 resamples" in marks.method_note(cmp)


def test_an_old_comparison_reads_without_intervals(runs_dir):
    run_dir = create_run(runs_dir, StudioSettings()).path
    write_old_comparison(run_dir)
    old = load_comparison(run_dir)
    lines = scorecard.metric_lines(old)
    assert [m.key for m in lines] == ["bleu", "chrf", "exact_match"]  # no ROUGE-L measured then
    assert lines[0].text() == "BLEU 0.3 -> 43.7, +43.4" and lines[0].cells()[4:] == ["-", "-"]
    assert lines[2].text() == "Exact match 0% -> 50%, +50.0"
    assert scorecard.headline(old).endswith("(no confidence interval).") and scorecard.tally_text(old) == ""
    assert "not recorded" in marks.cut_note(old) and "No confidence intervals" in marks.method_note(old)


def test_a_stopped_comparison_says_how_many_examples_its_scores_cover():
    cmp = sample_comparison()
    assert scorecard.partial_note(cmp) == ""
    cmp.partial, cmp.planned = True, 24
    assert scorecard.partial_note(cmp) == "Stopped after 2 of 24 examples; scores cover those 2."
    assert scorecard.headline(cmp).startswith("Stopped after 2 of 24 examples; scores cover those 2. Tuning improved")
    cmp.rows = cmp.rows[:1]
    assert scorecard.partial_note(cmp) == "Stopped after 1 of 24 examples; scores cover that one."


def test_a_sure_but_tiny_bleu_change_reads_as_negligible_never_as_a_significant_gain():
    # The run: "Tuning improved BLEU by +0.1 points, a significant gain on 48 held-out examples."
    cmp = sample_comparison()
    cmp.changes["bleu"] = Change(0.1, 0.2, 0.1, 0.01, 0.2)  # the interval excludes 0
    text = scorecard.headline(cmp)
    assert text.startswith("BLEU changed by +0.1 points on 2 held-out examples: negligible, smaller than the 2 points")
    assert "significant gain" not in text
    bleu = scorecard.metric_lines(cmp)[0]
    assert bleu.cells()[-1] == "negligible" and bleu.text().endswith("negligible")
    assert bleu.change.verdict == "negligible"  # what the Compare tab colours its card by: not a gain
    cmp.changes["exact_match"] = Change(0.0, 4.0, 4.0, 1.0, 7.0)
    assert scorecard.metric_lines(cmp)[3].cells()[-1] == "negligible"  # under 5 percentage points


def long_comparison(answer_loss: bool = True):
    """The sample comparison with 60-word references, a 128-token limit that cut answers, and the answer loss."""
    from studio.evaluate.answer_loss_record import ExampleLoss, summarise

    cmp = sample_comparison()
    for i, row in enumerate(cmp.rows):
        row.reference = " ".join(f"word{i}{j}" for j in range(60))
    cmp.rows[0].tuned_cut, cmp.rows[1].tuned_cut = True, False
    cmp.rows[0].base_cut = cmp.rows[1].base_cut = False
    cmp.answer_length = 128
    cmp.changes["bleu"] = Change(0.1, 0.2, 0.1, 0.01, 0.2)
    if answer_loss:
        cmp.answer_loss = summarise([ExampleLoss(0, 60, 2.0, 1.7), ExampleLoss(1, 80, 2.1, 1.8),
                                     ExampleLoss(2, 70, 1.9, 1.8)])
    return cmp


def test_long_answers_are_headlined_by_the_answer_loss():
    cmp = long_comparison()
    assert scorecard.reference_words(cmp) == 60 and scorecard.headline_metric(cmp) == "answer_loss"
    text = scorecard.headline(cmp)
    assert text.startswith("Tuning made the reference answers more likely: their perplexity fell from 7.")
    assert "a clear gain, lower for 3 of 3 held-out examples." in text and "BLEU" not in text
    assert text.endswith("1 of 2 tuned answers was cut at 128 tokens.")
    lines = scorecard.metric_lines(cmp)
    assert lines[0].key == "answer_loss" and lines[0].label == "Answer perplexity"  # first on every surface
    assert lines[0].cells()[-1] == "significant" and lines[0].change.verdict == "gain"  # lower is better
    assert [m.key for m in lines[1:]] == ["bleu", "chrf", "rouge_l", "exact_match"]
    # Short answers keep BLEU first and show the answer loss last.
    short = sample_comparison()
    short.answer_loss = cmp.answer_loss
    assert scorecard.headline_metric(short) == "bleu" and scorecard.metric_lines(short)[-1].key == "answer_loss"


def test_long_answers_without_an_answer_loss_say_bleu_says_little():
    text = scorecard.headline(long_comparison(answer_loss=False))
    assert text.startswith("BLEU changed by +0.1 points on 2 held-out examples: negligible")
    assert "BLEU says little about answers this long (the references' median is 60 words)" in text


def test_a_judge_follows_the_answer_loss_and_a_weak_judge_decides_nothing():
    cmp = long_comparison()
    judge = {"win_rate": 0.62, "low": 0.5, "high": 0.73, "pairs": 48, "ties": 5, "agreement": 0.85}
    text = scorecard.headline(cmp, judge=judge)
    sentence = ("A judge preferred the tuned answer over the base one in 62% [95% CI 50%, 73%] of 48 pairs (5 ties), "
                "agreeing with itself across both orders on 85%.")
    assert sentence in text and text.index("perplexity") < text.index(sentence) < text.index("cut at 128")
    weak = scorecard.judge_sentence({**judge, "agreement": 0.55})
    assert "only 55% of pairs: too weak to trust" in weak and "62%" not in weak
    assert scorecard.judge_sentence(None) == ""


def test_cut_answers_per_model_in_the_headline_and_the_table_mark():
    cmp = long_comparison()
    cmp.rows[0].base_cut = True
    assert scorecard.cut_sentence(cmp) == "1 of 2 base and 1 of 2 tuned answers were cut at 128 tokens."
    assert marks.cut_mark(cmp, cmp.rows[0], "tuned") == "cut at 128 tokens"
    assert marks.cut_mark(cmp, cmp.rows[1], "tuned") == ""
    assert scorecard.cut_sentence(sample_comparison()) == ""  # not recorded: nothing claimed


def test_cut_answers_stuck_in_a_loop_are_said_apart():
    cmp = long_comparison()
    loop = "I'm sorry, I'm sorry. " * 12
    cmp.rows[0].base_cut, cmp.rows[0].base = True, loop
    assert scorecard.cut_sentence(cmp) == ("1 of 2 base and 1 of 2 tuned answers were cut at 128 tokens; "
                                           "stuck in a loop: 1 base.")
    assert marks.cut_mark(cmp, cmp.rows[0], "base") == "cut at 128 tokens, stuck in a loop"
    assert marks.cut_mark(cmp, cmp.rows[0], "tuned") == "cut at 128 tokens"
    cmp.rows[0].tuned = loop
    assert scorecard.cut_sentence(cmp) == ("1 of 2 base and 1 of 2 tuned answers were cut at 128 tokens, all of them "
                                           "stuck in a loop.")
    cmp.rows[0].base_cut = False
    assert scorecard.cut_sentence(cmp) == "1 of 2 tuned answers was cut at 128 tokens, stuck in a loop."
    assert marks.ending(loop.strip(), loop, cmp) == "ran to the token limit, stuck in a loop"


def overlapping_comparison(include: bool = False):
    """Six rows, two of whose prompts repeat a training prompt (and are answered perfectly: remembered)."""
    from studio.evaluate.contamination import mark_overlap
    from studio.examples import Example
    from tests.builders import scored_comparison

    copied = "Explain in two sentences why the nightly backup job failed on the storage server last Friday night"
    held_out = [Example(f"Spell the word number {i} backwards please", f"drow{i}") for i in range(4)]
    held_out += [Example(copied, "The disk was full."), Example(copied + " again", "It ran out of space.")]
    cmp = scored_comparison(held_out, ["no"] * 6, ["drow0", "drow1", "x", "y", "The disk was full.",
                                                   "It ran out of space."],
                            generation={"max_new_tokens": 8, "include_overlap": include})
    return mark_overlap(cmp, held_out, [Example(copied, "Backups.")])


def test_held_out_prompts_that_repeat_training_prompts_are_left_out_of_the_headline():
    cmp = overlapping_comparison()
    assert [r.overlap for r in cmp.rows] == ["", "", "", "", "exact", "near"]
    text = scorecard.headline(cmp)
    assert "on 4 held-out examples" in text and text.endswith(
        "2 held-out prompts that repeat or nearly repeat a training prompt are left out of the headline (include "
        "them with Include overlap in Compare's generation settings, generation.include_overlap=true).")
    lines = {m.key: m for m in scorecard.metric_lines(cmp)}
    assert lines["exact_match"].after == "50%" and scorecard.tally_text(cmp).startswith("2 better, 2 the same")
    assert cmp.tuned.exact_match == 4 / 6  # the record itself keeps every row


def test_the_setting_counts_them_and_says_so():
    cmp = overlapping_comparison(include=True)
    text = scorecard.headline(cmp)
    assert "on 6 held-out examples" in text and text.endswith(
        "2 held-out prompts that repeat or nearly repeat a training prompt are counted in the headline "
        "(generation.include_overlap is on).")
    assert {m.key: m for m in scorecard.metric_lines(cmp)}["exact_match"].after == "67%"


def test_one_repeat_reads_in_the_singular_and_a_clean_comparison_says_nothing():
    cmp = overlapping_comparison()
    cmp.rows[5].overlap = ""
    assert scorecard.overlap_sentence(cmp).startswith("1 held-out prompt that repeats or nearly repeats a training "
                                                      "prompt is left out")
    assert scorecard.overlap_sentence(sample_comparison()) == "" and "prompt" not in scorecard.headline(
        sample_comparison())
