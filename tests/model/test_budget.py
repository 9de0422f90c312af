"""The arithmetic behind the Data tab's suggested subset and the command line's time budget."""
from __future__ import annotations

import pytest

from studio.data.dataset import LoadedDataset, prepare_splits
from studio.data.shapes import Shape
from studio.examples import Example
from studio.model.budget import (budget_choice, fit_subset, rows_for_training, training_budget_seconds,
                                 training_rows)
from studio.settings import DataSettings, StudioSettings, apply_overrides


def test_fit_subset_counts_examples_at_the_speed_within_the_budget():
    settings = StudioSettings()  # 0.75 epochs, max_length 256
    fit = fit_subset((100.0, "measured"), settings, [100, 300], n_train=1000, budget_seconds=300)
    assert fit.per_example_seconds == pytest.approx((100 + 256) / 2 / 100)  # lengths capped at max_length
    assert fit.fits == int(300 / (1.78 * 0.75)) and not fit.all_fit
    assert fit.all_seconds == pytest.approx(1.78 * 0.75 * 1000)


@pytest.mark.parametrize("n", [3, 10, 59, 431, 805, 2000])
@pytest.mark.parametrize("data", [DataSettings(), DataSettings(validation_fraction=0.1, max_test_examples=0)])
def test_training_rows_is_what_prepare_splits_keeps(n, data):
    examples = [Example(instruction=f"q{i}", output=f"a{i}") for i in range(n)]
    loaded = LoadedDataset(examples=examples, shape=Shape("alpaca", {}, "test"), source="test", columns=[], n_rows=n)
    assert len(prepare_splits(loaded, data).train) == training_rows(n, data)


def test_rows_for_training_adds_the_held_out_rows_on_top():
    data = DataSettings()
    n = rows_for_training(388, 805, data)
    assert training_rows(n, data) >= 388 > training_rows(n - 1, data)
    assert rows_for_training(10_000, 805, data) == 805


def test_compare_budgets_are_set_aside_from_the_total():
    settings = StudioSettings()
    assert training_budget_seconds(settings, 10) == 600 - 180 - 90 - 60
    off = apply_overrides(settings, {"generation": {"baseline_shots": 0}})
    assert training_budget_seconds(off, 10) == 600 - 180 - 60
    assert training_budget_seconds(settings, 1) == 60  # never below a minute


def test_no_known_speed_trains_every_row_and_says_why():
    choice = budget_choice(StudioSettings(), 10, tokenizer=None, speed=None)
    assert choice.max_examples is None and "No training speed is known" in choice.line
