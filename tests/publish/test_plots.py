"""The chart functions return sensible figures for typical, tiny and empty inputs."""
from __future__ import annotations

import pytest

from studio.evaluate.comparison import Comparison
from studio.evaluate.scoring import Scores
from studio.publish.plots import delta_figure, ema, length_histogram, loss_figure, scores_figure
from tests.builders import sample_comparison

HISTORY = [
    {"step": s, "loss": 2.0 / s + (0.3 if s % 2 else 0.0), "learning_rate": 3e-4 * (1 - s / 20), "epoch": s / 10}
    for s in range(1, 11)
] + [{"step": 5, "eval_loss": 1.1}, {"step": 10, "eval_loss": 0.9}]


def trace(fig, name: str):
    """The trace called `name` (fails the test if it is missing)."""
    matches = [t for t in fig.data if t.name == name]
    assert matches, [t.name for t in fig.data]
    return matches[0]


def test_loss_figure_typical_history():
    fig = loss_figure(HISTORY, smoothing=0.0)  # the raw line alone
    loss = trace(fig, "train loss")
    assert list(loss.x) == list(range(1, 11)) and "markers" in loss.mode
    assert list(trace(fig, "eval loss").y) == [1.1, 0.9]
    assert trace(fig, "learning rate").yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    assert fig.layout.template.layout.paper_bgcolor is not None and fig.layout.legend.orientation == "h"
    assert fig.layout.yaxis.type == "linear" and loss_figure(HISTORY, log_scale=True).layout.yaxis.type == "log"


def test_smoothing_adds_a_smoothed_line_that_changes_y():
    fig = loss_figure(HISTORY, smoothing=0.8)
    raw, smooth = trace(fig, "train loss (raw)"), trace(fig, "train loss (smoothed)")
    assert list(smooth.x) == list(raw.x) and list(smooth.y) != list(raw.y)
    assert raw.opacity < 1 and smooth.y[0] == pytest.approx(raw.y[0])  # debiased: starts at the first value
    assert ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])


def test_by_default_a_smoothed_line_over_faint_raw_points_and_eval_loss_as_logged():
    from studio.publish.plots import SMOOTHING

    fig = loss_figure(HISTORY)  # what the Demo tab and the default Train tab draw
    raw, smooth = trace(fig, "train loss (raw)"), trace(fig, "train loss (smoothed)")
    assert 0 < SMOOTHING < 1 and list(smooth.y) == pytest.approx(ema(list(raw.y), SMOOTHING))
    assert raw.opacity <= 0.3 and "markers" in raw.mode and raw.line.width < smooth.line.width
    assert smooth.opacity is None or smooth.opacity == 1  # the line the eye reads
    # The zig-zag of the raw loss (+0.3 on odd steps) is damped in the smoothed line.
    jumps = [abs(b - a) for a, b in zip(raw.y, raw.y[1:])]
    assert max(abs(b - a) for a, b in zip(smooth.y, smooth.y[1:])) < max(jumps)
    evals = trace(fig, "eval loss")
    assert list(evals.y) == [1.1, 0.9] and evals.opacity is None  # eval loss is drawn as logged


def test_single_logged_step_is_a_visible_point():
    fig = loss_figure([{"step": 1, "loss": 3.2, "learning_rate": 1e-4}], smoothing=0.6)
    loss = trace(fig, "train loss")
    assert list(loss.x) == [1] and list(loss.y) == [3.2] and "markers" in loss.mode


def test_empty_history_says_so():
    for history in ([], [{"step": 0, "learning_rate": 1e-4}]):
        fig = loss_figure(history)
        assert not fig.data
        assert fig.layout.annotations[0].text == "No loss logged yet"


def test_scores_figure_groups_base_and_tuned_with_labels():
    fig = scores_figure(sample_comparison())
    base, tuned = trace(fig, "base"), trace(fig, "tuned")
    assert fig.layout.barmode == "group" and list(base.x) == ["BLEU", "chrF", "ROUGE-L", "exact match (%)"]
    assert list(tuned.y) == pytest.approx([71.4, 80.2, 50.0, 50.0]) and list(tuned.text) == ["71.4", "80.2", "50.0",
                                                                                           "50.0"]
    assert list(base.text) == ["2.1", "15.0", "33.3", "0.0"]
    old = sample_comparison()
    old.base.rouge_l = old.tuned.rouge_l = None  # compared before ROUGE-L was measured
    assert list(trace(scores_figure(old), "base").x) == ["BLEU", "chrF", "exact match (%)"]


def test_the_scores_figure_scores_the_rows_the_headline_scores():
    from studio.publish import scorecard
    from tests.publish.test_scorecard import overlapping_comparison

    cmp = overlapping_comparison()
    fig, cards = scores_figure(cmp), scorecard.headline_comparison(cmp)
    assert cards.tuned.bleu != pytest.approx(cmp.tuned.bleu)  # the left-out rows change the score
    assert list(trace(fig, "tuned").y)[0] == pytest.approx(cards.tuned.bleu)
    assert fig.layout.title.text == "Before vs after tuning (4 held-out examples; 2 that repeat a training prompt left out)"
    assert scores_figure(overlapping_comparison(include=True)).layout.title.text == (
        "Before vs after tuning (6 held-out examples)")


def test_delta_figure_sorted_and_coloured():
    bars = delta_figure(sample_comparison()).data[0]
    assert list(bars.y) == [100.0, -15.0]
    assert bars.marker.color[0] != bars.marker.color[1]
    empty = Comparison(rows=[], base=Scores(0, 0, 0, 0), tuned=Scores(0, 0, 0, 0), generation={},
                       base_seconds=0.0, tuned_seconds=0.0, template="alpaca")
    assert not delta_figure(empty).data and delta_figure(empty).layout.annotations


def test_length_histogram_marks_max_length():
    fig = length_histogram([10, 20, 30, 300, 400], max_length=256)
    assert list(fig.data[0].x) == [10, 20, 30, 300, 400]
    line = fig.layout.shapes[0]
    assert line.x0 == line.x1 == 256 and line.line.dash == "dash"
    assert "2 of 5 over max_length 256" in fig.layout.title.text
    assert "all 3 fit" in length_histogram([1, 2, 3], 256).layout.title.text
    assert length_histogram([], 256).layout.annotations


def test_length_histogram_does_not_squash_short_examples():
    fig = length_histogram([20, 30, 40], max_length=256)
    assert not fig.layout.shapes  # no line at 256 stretching the axis
    assert any("max_length 256 is off the chart" in a.text for a in fig.layout.annotations)


def test_timeline_figure_plots_bleu_by_step_beside_the_loss_and_marks_the_snapshot_in_use():
    from studio.publish.plots import timeline_figure
    from tests.builders import sample_timeline

    t = sample_timeline()
    t.chosen_step = 60
    fig = timeline_figure(t, HISTORY)
    bleu = trace(fig, "held-out BLEU (test)")
    assert list(bleu.x) == [0, 20, 40, 60, 80] and list(bleu.y) == [1.0, 90.0, 50.0, 40.0, 30.0]
    assert list(trace(fig, "validation BLEU").y) == [2.0, 30.0, 60.0, 60.0, 10.0]
    assert trace(fig, "training loss").yaxis == "y2"
    assert any("in use: step 60" in (a.text or "") for a in fig.layout.annotations)
    t.points = []
    assert timeline_figure(t).layout.annotations[0].text == "No snapshot scored yet"


def test_runs_loss_figure_overlays_each_run_in_its_own_colour():
    from studio.publish.plots import runs_loss_figure

    fig = runs_loss_figure([("A", HISTORY), ("B", HISTORY[:3])])
    a, b = trace(fig, "A train loss"), trace(fig, "B train loss")
    assert len(a.x) == 10 and len(b.x) == 3 and a.line.color != b.line.color
    assert trace(fig, "A eval loss").line.dash == "dot"
    assert runs_loss_figure([("A", []), ("B", [])]).layout.annotations[0].text == "Neither run has logged a loss"
