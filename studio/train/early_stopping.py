"""Optional early stopping on the eval loss (`train.early_stopping_patience`, `train.early_stopping_min_delta`).

Our own small callback rather than transformers' EarlyStoppingCallback: that one needs `load_best_model_at_end`
and `metric_for_best_model`, and says nothing about why it stopped. This one watches `eval_loss` only (the
validation split, never the test rows), checkpoints the step it stops at (so the run can be trained more), and
reports the reason in one sentence for the Train tab, the log and run.json.
"""
from __future__ import annotations

from collections.abc import Callable

from transformers import TrainerCallback

from studio.errors import SettingsError
from studio.settings import StudioSettings


def check_early_stopping(settings: StudioSettings) -> None:
    """Early stopping needs eval loss during training: a validation split and eval_steps > 0 (SettingsError else)."""
    if settings.train.early_stopping_patience <= 0:
        return
    if settings.data.validation_fraction <= 0 or settings.train.eval_steps <= 0:
        raise SettingsError("Early stopping watches the eval loss during training: set data.validation_fraction above 0 "
                            "and train.eval_steps above 0, or set train.early_stopping_patience to 0.")


def stop_reason(step: int, patience: int, min_delta: float, best: float, best_step: int) -> str:
    """The sentence that says why training stopped early."""
    by = f"by more than {min_delta:g} " if min_delta > 0 else ""
    times = "1 evaluation" if patience == 1 else f"{patience} evaluations in a row"
    return (f"Stopped early at step {step}: the eval loss did not improve {by}for {times} "
            f"(best {best:.4g} at step {best_step}).")


class EarlyStopping(TrainerCallback):
    """Ends training when eval_loss has not dropped by more than `min_delta` for `patience` evaluations."""

    def __init__(self, patience: int, min_delta: float, on_stop: Callable[[str], None]) -> None:
        self.patience, self.min_delta, self.on_stop = patience, min_delta, on_stop
        self.best: float | None = None
        self.best_step, self.bad = 0, 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        """Count evaluations without improvement; stop (with a checkpoint) once there are `patience` of them."""
        loss = (metrics or {}).get("eval_loss")
        if loss is None:
            return
        if self.best is None or loss < self.best - self.min_delta:
            self.best, self.best_step, self.bad = float(loss), state.global_step, 0
            return
        self.bad += 1
        if self.bad >= self.patience and state.global_step < state.max_steps:
            control.should_training_stop = True
            control.should_save = True
            self.on_stop(stop_reason(state.global_step, self.patience, self.min_delta, self.best, self.best_step))
