"""How many training examples fit a time budget at this machine's training speed.

One owner for the arithmetic behind the Data tab's "suggested subset for the time budget" and the subset that
`python -m studio train --data FILE` takes by itself: the speed is the newest run's measured tokens/s for the same
model on this machine, else an estimate from the model's FLOPs per token (its config on the meta device, no weights).
"""
from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio import runs
from studio.runs import RunFolder
from studio.settings import EMBEDDED_MODEL, DataSettings, StudioSettings


@dataclass(frozen=True)
class SubsetFit:
    """What one pass over the training split costs and how many examples fit the budget."""

    tokens_per_second: float
    source: str  # where the speed comes from ("measured in run ...", "estimated from ...")
    per_example_seconds: float  # one example, one pass (capped at max_length tokens)
    epochs: float
    n_train: int
    fits: int  # training examples that fit the budget (at least 1)

    @property
    def all_seconds(self) -> float:
        """Seconds to train on every training example for the configured epochs."""
        return self.per_example_seconds * self.epochs * self.n_train

    @property
    def all_fit(self) -> bool:
        """Whether every training example fits the budget."""
        return self.fits >= self.n_train


def measured_speed(runs_root: Path, model: str) -> tuple[float, str] | None:
    """(median training tokens/s, which run) of the newest run of `model` on this machine that logged a speed."""
    try:
        found = runs.list_runs(runs_root)
    except OSError:
        return None
    for info in found:
        if info.base_model != model:
            continue
        speeds = [r["tokens_per_second"] for r in RunFolder(info.path).read_metrics() if r.get("tokens_per_second")]
        if speeds:
            return float(statistics.median(speeds)), f"measured in run {info.run_id}"
    return None


@functools.lru_cache(maxsize=8)
def estimated_speed(model: str) -> tuple[float, str] | None:
    """Training tokens/s estimated from the model's FLOPs per token (its config, on the meta device: no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from studio.model.embedded import embedded_cache_dir, embedded_cache_ready
    from studio.model.info import estimate_epoch_seconds, model_info

    if model == EMBEDDED_MODEL:
        if not embedded_cache_ready():
            return None
        model = str(embedded_cache_dir())
    try:
        config = AutoConfig.from_pretrained(model, local_files_only=True)
        with torch.device("meta"):
            info = model_info(AutoModelForCausalLM.from_config(config))
    except Exception:  # noqa: BLE001 - no local config (or an exotic one): no estimate, the caller says so
        return None
    return 1.0 / estimate_epoch_seconds(info, 1), "estimated from the model's FLOPs per token"


def training_speed(runs_root: Path, model: str, estimate: bool = True) -> tuple[float, str] | None:
    """This machine's measured training speed for `model`, else (when `estimate`) the FLOPs estimate."""
    return measured_speed(runs_root, model) or (estimated_speed(model) if estimate else None)


def fit_subset(speed: tuple[float, str], settings: StudioSettings, lengths: list[int], n_train: int,
               budget_seconds: float) -> SubsetFit:
    """How many training examples fit `budget_seconds`, from token lengths of a sample of the training split."""
    tokens_per_second, source = speed
    per_example = statistics.fmean(min(n, settings.data.max_length) for n in lengths) / tokens_per_second
    epochs = settings.train.epochs
    fits = max(1, int(budget_seconds / (per_example * epochs)))
    return SubsetFit(tokens_per_second, source, per_example, epochs, n_train, fits)


def rows_for_training(fits: int, n_rows: int, data: DataSettings) -> int:
    """The `data.max_examples` whose split leaves at least `fits` training rows (the held-out rows come on top)."""
    for n in range(min(fits, n_rows), n_rows + 1):
        if training_rows(n, data) >= fits:
            return n
    return n_rows


def training_rows(n: int, data: DataSettings) -> int:
    """Training rows `prepare_splits` keeps out of `n` rows: the test share (capped) and validation share go first."""
    n_test = max(1, round(n * data.test_fraction))
    if data.max_test_examples:
        n_test = min(n_test, data.max_test_examples)
    n_val = max(1, round(n * data.validation_fraction)) if data.validation_fraction > 0 else 0
    return max(0, n - n_test - n_val)


LENGTH_SAMPLE = 2000  # training examples tokenised to measure lengths (the Data tab samples as many)
COMPARE_MARGIN_SECONDS = 60.0  # model loading, scoring and the report around Compare's timed parts


@dataclass(frozen=True)
class BudgetChoice:
    """The training subset a run takes to fit its time budget (max_examples None: every row fits)."""

    max_examples: int | None
    line: str


def training_budget_seconds(settings: StudioSettings, total_minutes: float) -> float:
    """What is left for training once Compare's own time budgets (answers, baseline) and a margin are set aside."""
    gen = settings.generation
    compare = gen.answer_budget_seconds + (gen.baseline_budget_seconds if gen.baseline_shots else 0.0)
    return max(60.0, total_minutes * 60 - compare - COMPARE_MARGIN_SECONDS)


def budget_choice(settings: StudioSettings, total_minutes: float, tokenizer: Any, speed: tuple[float, str] | None) -> BudgetChoice:
    """The subset of the run's data that trains within its share of `total_minutes` (train + Compare), and why."""
    from studio.data.dataset import load_settings_source, prepare_splits
    from studio.data.formatting import seeded_sample, token_lengths
    from studio.data.templates import template_for

    if speed is None:
        return BudgetChoice(None, f"No training speed is known for {settings.model.model} yet, so every row trains "
                                  f"(a first run measures it).")
    splits = prepare_splits(load_settings_source(settings.data), settings.data)
    sample = seeded_sample(splits.train, LENGTH_SAMPLE, settings.data.seed)
    lengths = token_lengths(tokenizer, template_for(settings.data, tokenizer), sample, settings.data.max_length)
    seconds = training_budget_seconds(settings, total_minutes)
    fit = fit_subset(speed, settings, lengths, len(splits.train), seconds)
    if not lengths or fit.all_fit:
        return BudgetChoice(None, "")
    n_rows = len(splits.train) + len(splits.test) + len(splits.validation)
    chosen = rows_for_training(fit.fits, n_rows, settings.data)
    return BudgetChoice(chosen, (
        f"Training on {training_rows(chosen, settings.data):,} of {len(splits.train):,} training rows to fit the "
        f"{seconds / 60:.2g}-minute training budget ({total_minutes:g} minutes with Compare, at "
        f"{fit.tokens_per_second:.0f} tokens/s {fit.source}); --budget-minutes 0 or --set data.max_examples=0 "
        "uses all."))
