"""Score every snapshot of a run: the base model (step 0), then each saved adapter snapshot, on the same rows.

A snapshot is loaded next to the run's own adapter as a second, temporary adapter of the same PeftModel, made
active only while it answers (holding the model's lock, so a chat or Compare sharing the model never sees it),
then removed: the run's adapter is never touched. Every point is answered with the same generation settings (sized
to the references by the caller, `pipeline.score_snapshots_run`) and cut by the same stop rule as Compare, on the test rows (shown) and, when the run has one, the validation rows
(used to choose a snapshot). A stop between two batches keeps the points already finished.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from studio.errors import RunError, StudioError
from studio.evaluate.generation import GenerationStopped, generate_answers
from studio.evaluate.scoring import score
from studio.evaluate.sharing import adapter_off, model_lock
from studio.evaluate.timeline import Timeline, TimelinePoint
from studio.examples import Example
from studio.runs import RunFolder
from studio.settings import GenerationSettings

SNAPSHOT = "studio-snapshot"  # the temporary adapter's name inside the PeftModel
Progress = Callable[[int, int, int], None]  # (points done, points planned, step about to be scored)


class NothingScored(GenerationStopped):
    """The scoring was stopped before its first point (the base model) was finished."""

    def __init__(self, planned: int) -> None:
        StudioError.__init__(self, f"Stopped before any of the {planned} timeline points was scored, so nothing was "
                                   "saved.")
        self.answers = []


@contextlib.contextmanager
def answering_as(model: Any, folder: RunFolder, step: int) -> Iterator[None]:
    """The model answers as snapshot `step` (0: the base model) for the block, under its lock; restored after."""
    with model_lock(model):
        if step == 0:
            with adapter_off(model):
                yield
            return
        previous = model.active_adapter
        # Keep the run's adapter as trainable or frozen as it was (set_adapter would make it trainable).
        frozen = not any(p.requires_grad for name, p in model.named_parameters() if f".{previous}." in name)
        model.load_adapter(str(folder.snapshot_dir(step)), adapter_name=SNAPSHOT)
        try:
            model.set_adapter(SNAPSHOT, inference_mode=True)
            yield
        finally:
            model.set_adapter(previous, inference_mode=frozen)
            model.delete_adapter(SNAPSHOT)


def _answers(model: Any, tokenizer: Any, template: Any, rows: list[Example], gen: GenerationSettings,
             should_stop: Callable[[], bool] | None) -> list[str]:
    prompts = [template.prompt(e) for e in rows]
    stops = tuple(template.stop_strings)
    return [a.text for a in generate_answers(model, tokenizer, prompts, gen, should_stop=should_stop,
                                             stop_strings=stops)] if rows else []


def score_point(model: Any, tokenizer: Any, template: Any, folder: RunFolder, step: int, test: list[Example],
                validation: list[Example], gen: GenerationSettings, eval_loss: float | None = None,
                should_stop: Callable[[], bool] | None = None) -> TimelinePoint:
    """One timeline point: the test answers and scores (and validation scores) of the model as it was at `step`."""
    with answering_as(model, folder, step):
        answers = _answers(model, tokenizer, template, test, gen, should_stop)
        checked = _answers(model, tokenizer, template, validation, gen, should_stop)
    test_scores = score([e.output for e in test], answers)[0]
    validation_scores = score([e.output for e in validation], checked)[0] if validation else None
    return TimelinePoint(step, test_scores, answers, validation_scores, eval_loss)


def score_snapshots(model: Any, tokenizer: Any, template: Any, folder: RunFolder, test: list[Example],
                    validation: list[Example], gen: GenerationSettings, history: list[dict[str, Any]],
                    progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> Timeline:
    """The base model and every snapshot answered on `test` (and `validation`), in step order; partial if stopped."""
    steps = [0, *folder.snapshot_steps()]
    if len(steps) == 1:
        raise RunError(f"Run {folder.run_id} has no snapshots to score; train with train.snapshots above 0 to watch "
                       "the model learn.")
    eval_losses = {int(r["step"]): float(r["eval_loss"]) for r in history if r.get("eval_loss") is not None}
    points: list[TimelinePoint] = []
    try:
        for step in steps:
            if should_stop is not None and should_stop():
                break
            if progress is not None:
                progress(len(points), len(steps), step)
            points.append(score_point(model, tokenizer, template, folder, step, test, validation, gen,
                                      eval_losses.get(step), should_stop))
    except GenerationStopped:
        pass
    if not points:
        raise NothingScored(len(steps))
    if progress is not None:
        progress(len(points), len(steps), points[-1].step)
    final_step = max((int(r.get("step") or 0) for r in history), default=steps[-1])
    return Timeline(examples=[{"instruction": e.instruction, "input": e.input, "reference": e.output} for e in test],
                    points=points, generation=dataclasses.asdict(gen), n_validation=len(validation),
                    partial=len(points) < len(steps), planned=len(steps), final_step=max(final_step, steps[-1]))
