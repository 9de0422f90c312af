"""Compare's side of the contamination guard: rows flagged from the run's splits, the comparison scored without them."""
from __future__ import annotations

import dataclasses
import json

import pytest

from studio.evaluate.answer_loss_record import ExampleLoss, summarise
from studio.evaluate.comparison import Comparison, load_comparison, save_comparison
from studio.evaluate.contamination import clean_comparison, held_out_flags, mark_overlap, overlapping
from studio.examples import Example
from studio.runs import RunFolder, create_run
from studio.settings import StudioSettings
from tests.builders import scored_comparison

COPIED = ("Summarise the main reasons why the project deadline slipped by two weeks and what the team will change "
          "in the next sprint to avoid it")
TRAIN = [Example(COPIED, "We underestimated testing."), Example("Name a colour.", "Blue")]
HELD_OUT = [Example("Translate 'cat' into French.", "chat"), Example(COPIED.upper() + "!", "Testing took longer."),
            Example("What is 3 times 4?", "12"), Example("Spell 'dog' backwards.", "god"),
            Example("Name a colour.", "Red")]


@pytest.fixture()
def compared() -> Comparison:
    base = ["le chien", "No idea.", "7", "dgo", "Green"]
    tuned = ["chat", "Testing took longer.", "12", "god", "Red"]
    return scored_comparison(HELD_OUT, base, tuned)


def test_held_out_flags_follow_the_data_rule():
    assert held_out_flags(TRAIN, HELD_OUT) == ["", "exact", "", "", "exact"]


def test_rows_are_flagged_by_their_prompt_even_when_a_stop_kept_only_some(compared):
    stopped = dataclasses.replace(compared, rows=[compared.rows[4], compared.rows[0], compared.rows[1]], partial=True)
    mark_overlap(stopped, HELD_OUT, TRAIN)
    assert [r.overlap for r in stopped.rows] == ["exact", "", "exact"] and overlapping(stopped) == 2
    assert stopped.overlap["flags"] == ["", "exact", "", "", "exact"] and "Jaccard" in stopped.overlap["rule"]


def test_the_clean_comparison_is_scored_as_if_only_the_other_rows_had_been_compared(compared):
    mark_overlap(compared, HELD_OUT, TRAIN)
    clean = clean_comparison(compared)
    kept = [0, 2, 3]
    alone = scored_comparison([HELD_OUT[i] for i in kept], [compared.rows[i].base for i in kept],
                          [compared.rows[i].tuned for i in kept])
    assert [r.instruction for r in clean.rows] == [r.instruction for r in alone.rows]
    assert clean.changes == alone.changes and clean.tally == alone.tally
    assert clean.tuned.bleu == pytest.approx(alone.tuned.bleu) and clean.tuned.exact_match == alone.tuned.exact_match
    assert clean.base.n == 3 and clean.n_planned == 3 and len(compared.rows) == 5  # the record keeps every row
    assert clean_comparison(compared) is clean  # asked again (every surface does): not rescored


def test_the_answer_loss_leaves_out_the_same_examples(compared):
    losses = [ExampleLoss(index=i, tokens=4 + i, base=2.0 + i / 10, tuned=1.0 + i / 7) for i in range(5)]
    compared.answer_loss = summarise(losses, base_seconds=2.0)
    mark_overlap(compared, HELD_OUT, TRAIN)
    clean = clean_comparison(compared).answer_loss
    expected = summarise([losses[i] for i in (0, 2, 3)], base_seconds=2.0)
    assert clean == expected and compared.answer_loss.n == 5


def test_nothing_flagged_or_everything_flagged_leaves_the_comparison_as_it_is(compared):
    mark_overlap(compared, HELD_OUT, [])
    assert overlapping(compared) == 0 and clean_comparison(compared) is compared
    mark_overlap(compared, HELD_OUT, HELD_OUT)
    assert overlapping(compared) == 5 and clean_comparison(compared) is compared


def test_flags_are_saved_and_older_files_load_without_them(compared, runs_dir):
    run_dir = create_run(runs_dir, StudioSettings()).path
    mark_overlap(compared, HELD_OUT, TRAIN)
    save_comparison(run_dir, compared)
    loaded = load_comparison(run_dir)
    assert loaded == compared and [r.overlap for r in loaded.rows] == ["", "exact", "", "", "exact"]
    folder = RunFolder(run_dir)
    rows = [json.loads(line) for line in folder.comparison_rows_file.read_text().splitlines()]
    summary = json.loads(folder.comparison_file.read_text())
    for row in rows:
        del row["overlap"]
    del summary["overlap"]
    folder.comparison_rows_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    folder.comparison_file.write_text(json.dumps(summary))
    old = load_comparison(run_dir)
    assert [r.overlap for r in old.rows] == [None] * 5 and old.overlap == {} and clean_comparison(old) is old


def test_the_prompt_only_baseline_leaves_out_the_same_rows(compared):
    from studio.evaluate.baseline_record import score_baseline
    from studio.evaluate.generation import Answer

    shots = [Answer(text, text, 2, "eos") for text in ("chat", "Testing took longer.", "7", "dog", "Red")]
    compared.baseline = score_baseline(compared.rows, shots, 3, "fits")
    mark_overlap(compared, HELD_OUT, TRAIN)
    clean = clean_comparison(compared).baseline
    kept = [0, 2, 3]
    alone = score_baseline([compared.rows[i] for i in kept], [shots[i] for i in kept], 3, "fits")
    assert clean.rows == alone.rows and clean.changes == alone.changes and clean.tally == alone.tally
    assert clean.scores.bleu == pytest.approx(alone.scores.bleu) and clean.scores.n == 3
    assert len(compared.baseline.rows) == 5  # the record keeps every row
