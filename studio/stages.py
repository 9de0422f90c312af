"""After-training stages: work a `TrainingJob` does in its own thread once its adapter is saved (the demo's compare +
report, `studio.demo`).

They run after the queue's slot is given back, while the job reads "evaluating" and its `stage` names the running
one; the first stop or failure ends the job. run.json keeps training's own outcome: the adapter is saved whatever a
stage does. A stop during training means no stage runs: each adds its `skipped` sentence to the job's message.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from studio.errors import StudioError

Progress = Callable[[str, int, int], None]  # (which, done, total), e.g. ("tuned", 3, 16)
Job = Any  # the studio.jobs.TrainingJob running the stages (named, not imported: jobs imports this module)
log = logging.getLogger("studio.stages")
UNEXPECTED = "Something unexpected went wrong after training; the details are in the server log."


class StageStopped(Exception):
    """An after-training stage ended on a stop; the message says what it kept (added to the job's message)."""


class AfterStage(Protocol):
    """Work a job does after saving its adapter, in its own thread (the demo's compare + report)."""

    name: str  # the job's `stage` while it runs, e.g. "compare"
    skipped: str  # the sentence added to the job's message when a stop during training means it never ran

    def run(self, job: Job, progress: Progress, should_stop: Callable[[], bool]) -> str:
        """Do the work; return a sentence for the job's message; StageStopped on a stop, StudioError on a failure."""
        ...


@dataclass(frozen=True)
class StagesEnd:
    """How the stages ended: completed, stopped or failed, with the job's closing message or its error."""

    status: str
    message: str = ""
    error: str = ""


def run_stages(
    job: Job, stages: Sequence[AfterStage], on_stage: Callable[[str], None], progress: Progress,
    should_stop: Callable[[], bool],
) -> StagesEnd:
    """Run the stages in order after `job.message` (training's outcome); the first stop or failure ends them."""
    said = [job.message]
    for stage in stages:
        on_stage(stage.name)
        try:
            said.append(stage.run(job, progress, should_stop))
        except StageStopped as exc:
            return StagesEnd("stopped", " ".join(filter(None, [*said, str(exc)])))
        except StudioError as exc:
            return StagesEnd("failed", error=str(exc))
        except Exception:  # noqa: BLE001 - a failed stage must never take the server down
            log.exception("The %s stage after training failed", stage.name)
            return StagesEnd("failed", error=UNEXPECTED)
    return StagesEnd("completed", " ".join(filter(None, said)))


def skipped_message(message: str, stages: Sequence[AfterStage]) -> str:
    """Training's closing message when a stop means the stages never run: each says what was skipped."""
    return " ".join([message, *(stage.skipped for stage in stages)])
