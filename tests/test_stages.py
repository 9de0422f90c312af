"""After-training stages without a model: how `run_stages` ends on a sentence, a stop, a studio error or a crash."""
from __future__ import annotations

from types import SimpleNamespace

from studio.errors import StudioError
from studio.stages import UNEXPECTED, StageStopped, run_stages, skipped_message


class Stage:
    """A stage that reports progress once, then says `says` or raises `raises`."""

    def __init__(self, name: str, says: str = "", raises: BaseException | None = None) -> None:
        self.name, self.says, self.raises = name, says, raises
        self.skipped = f"{name} was skipped."

    def run(self, job, progress, should_stop):
        progress(self.name, 1, 2)
        if self.raises is not None:
            raise self.raises
        return self.says


def _run(*stages: Stage, message: str = "Trained 3 steps."):
    entered, answered = [], []
    job = SimpleNamespace(message=message)
    end = run_stages(job, stages, entered.append, lambda *a: answered.append(a), lambda: False)
    return end, entered, answered


def test_stages_run_in_order_and_their_sentences_follow_trainings():
    end, entered, answered = _run(Stage("compare", "Compared."), Stage("report", "Reported."))
    assert (end.status, end.message, end.error) == ("completed", "Trained 3 steps. Compared. Reported.", "")
    assert entered == ["compare", "report"] and answered == [("compare", 1, 2), ("report", 1, 2)]


def test_a_stop_ends_the_stages_with_what_was_kept():
    end, entered, _ = _run(Stage("compare", raises=StageStopped("Kept 2 answers.")), Stage("report", "Reported."))
    assert (end.status, end.message, end.error) == ("stopped", "Trained 3 steps. Kept 2 answers.", "")
    assert entered == ["compare"]


def test_a_studio_error_fails_with_its_sentence_and_a_crash_with_a_plain_one():
    end, _, _ = _run(Stage("compare", raises=StudioError("The run folder is gone.")))
    assert (end.status, end.message, end.error) == ("failed", "", "The run folder is gone.")
    end, _, _ = _run(Stage("compare", raises=ZeroDivisionError("division by zero")))
    assert (end.status, end.error) == ("failed", UNEXPECTED) and "division" not in end.error


def test_a_stop_during_training_names_every_skipped_stage():
    stages = (Stage("compare"), Stage("report"))
    assert skipped_message("Stopped at step 2 of 6.", stages) == (
        "Stopped at step 2 of 6. compare was skipped. report was skipped.")
