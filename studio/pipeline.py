"""The named steps after training, shared by the CLI and the UI: reopen a run -> compare -> report."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio import runs
from studio.errors import RunError
from studio.evaluate.baseline import base_decoding_rate, run_baseline
from studio.evaluate.baseline_record import BaselineRecord, score_baseline, skipped
from studio.evaluate.before_after import compare, fit_length
from studio.evaluate.comparison import Comparison, load_comparison, save_comparison
from studio.evaluate.contamination import mark_overlap
from studio.evaluate.generation import GenerationStopped
from studio.evaluate.lengths import reference_lengths, sized, sized_to_references
from studio.evaluate.shared_loss import SharedLoss
from studio.evaluate.snapshot_scores import score_snapshots
from studio.evaluate.timeline import CRITERIA, Timeline, TimelinePoint, best_snapshot, load_timeline, save_timeline
from studio.examples import Example
from studio.model.threads import thread_policy, use_threads
from studio.publish.scorecard import partial_note
from studio.runs import RunFolder
from studio.settings import GenerationSettings, StudioSettings
from studio.train.snapshots import restore_final_adapter, use_snapshot


@dataclass
class RunModel:
    """A tuned model ready for Compare: the PEFT model (base = adapter disabled), its tokenizer and data."""

    run_id: str
    run_dir: Path
    model: Any
    tokenizer: Any
    template: Any
    test: list[Example]
    settings: StudioSettings
    adapter_step: int | None = None  # the snapshot step when a chosen snapshot is the run's adapter
    _lengths: list[int] | None = field(default=None, repr=False)  # the held-out references' token lengths, cached
    train: list[Example] = field(default_factory=list)  # the training split: the prompt-only baseline's shots

    def reference_lengths(self) -> list[int]:
        """Token lengths (answer + EOS) of the held-out references Compare uses (the chat sizes its answers by them)."""
        if self._lengths is None:
            cap = self.settings.data.max_test_examples
            self._lengths = reference_lengths(self.tokenizer, self.template, _capped(self.test, cap))
        return self._lengths

    @property
    def base_label(self) -> str:
        """Which weights produce the 'before' answers."""
        from studio.model.info import model_title

        return f"Base: {model_title(self.settings.model.model)} (adapter disabled)"

    @property
    def tuned_label(self) -> str:
        """Which weights produce the 'after' answers."""
        which = f"step-{self.adapter_step} snapshot" if self.adapter_step else "adapter"
        return f"Tuned: run {self.run_id} {which}"


def from_job(job: Any) -> RunModel:
    """Reuse a finished TrainingJob's in-memory model instead of reloading it."""
    if job.model is None or not RunFolder(job.run_dir).has_adapter():
        raise RunError("This run has no trained adapter to compare yet.")
    return RunModel(job.run_id, job.run_dir, job.model, job.tokenizer, job.template,
                    list(job.splits.test), job.settings, train=list(job.splits.train))


def open_run(root: Path, run_id: str, token: str | None = None, model_loader: Callable[..., Any] | None = None) -> RunModel:
    """Load a past run's base model (through `model_loader` if given) with its adapter on top, for Compare."""
    from peft import PeftModel

    from studio.data.templates import template_for
    from studio.model.loading import load_base_model

    info = runs.read_run(root, run_id)
    if not info.has_adapter:
        raise RunError(f"Run {run_id} has no saved adapter, so there is nothing to compare.")
    folder = info.folder
    settings = folder.read_settings()
    loaded = (model_loader or load_base_model)(settings.model, token=token)
    model = PeftModel.from_pretrained(loaded.model, str(folder.adapter_dir))
    model.eval()
    template = template_for(settings.data, loaded.tokenizer)
    return RunModel(run_id, info.path, model, loaded.tokenizer, template, folder.read_split("test"), settings,
                    (info.adapter_choice or {}).get("step"),
                    train=folder.read_split("train", required=False))


def compare_run(
    rm: RunModel,
    gen: GenerationSettings | None = None,
    limit: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    loss_progress: Callable[[str, int, int], None] | None = None,
) -> Comparison:
    """Answer the held-out prompts with base and tuned weights, score the answers and the references' answer loss,
    save results and the report.

    The answer length is fitted to the references unless the settings say otherwise (`before_after.fit_length`), and
    long answers get the loop guard (`lengths.sized`); the answer loss is read on each batch's prompt cache as it is
    answered (`shared_loss`: the prompts are read once for both), and the examples no cache could score on their own
    afterwards. It reports to `loss_progress` (which, done, total), the answers to `progress`. When
    `should_stop()` turns true it ends between batches: the examples both models finished make a `partial`
    comparison, saved unless the run already has a complete one (which is then kept; `stopped_note` says which).
    NothingCompared (a GenerationStopped) when no example was finished: nothing is saved.
    """
    from studio.publish.report import write_report

    examples = rm.test[:limit] if limit > 0 else rm.test
    if not examples:
        raise RunError("This run has no held-out examples to compare on.")
    info = runs.read_run(rm.run_dir.parent, rm.run_id)  # a deleted run fails here, not after minutes of generation
    gen = gen or rm.settings.generation
    # The run's own thread count (recorded when it trained), so its answers are as reproducible as its weights.
    with use_threads(thread_policy(rm.settings.train, info.threads or None)):
        length = fit_length(rm.model, rm.tokenizer, rm.template, examples, gen)
        answering, why = sized(gen, length)
        scoring = SharedLoss.build(rm.tokenizer, rm.template, examples, rm.settings.data.max_length, loss_progress,
                                   gen.answer_loss_precision)
        result = compare(rm.model, rm.tokenizer, rm.template, examples, answering, progress=progress,
                         should_stop=should_stop, loss=scoring)
        loss = scoring.finish(rm.model)  # the examples no prompt cache scored, on their own
        result.baseline = _baseline(rm, examples, answering, result, progress, should_stop)
    result.answer_length_reason, result.answer_loss = why, loss
    result.adapter_step = (info.adapter_choice or {}).get("step")
    mark_overlap(result, examples, RunFolder(rm.run_dir).read_split("train", required=False))
    if result.partial and _has_complete_comparison(rm.run_dir):
        return result
    try:
        save_comparison(rm.run_dir, result)
    except FileNotFoundError:
        raise RunError(f"Run folder {rm.run_id} was deleted while it was being compared.") from None
    write_report(rm.run_dir)
    return result


def _baseline(rm: RunModel, examples: list[Example], gen: GenerationSettings, result: Comparison,
              progress: Callable[[str, int, int], None] | None, should_stop: Callable[[], bool] | None
              ) -> BaselineRecord:
    """The base model answering with k training examples before each prompt, scored against the tuned model."""
    if result.partial:
        return skipped("Prompting alone was not measured: Compare was stopped before it.")
    try:
        got = run_baseline(rm.model, rm.tokenizer, rm.template, rm.train, examples, gen, progress, should_stop,
                           steps_per_second=base_decoding_rate(result))
    except GenerationStopped:
        return skipped("Prompting alone was not measured: it was stopped before it finished.")
    if not got.choice.k:
        return skipped(got.choice.reason)
    choice = got.choice
    return score_baseline(result.rows, got.answers, choice.k, choice.reason, choice.shots, gen.max_new_tokens,
                          got.seconds, choice.estimated_seconds)


def probe_run(
    rm: RunModel,
    tasks: list[str] | str | None = None,
    batch_size: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Any:
    """Score base vs tuned on the forgetting probe (or lm-eval tasks), save probe.json and refresh the report.

    Returns a `studio.evaluate.probe_record.ProbeResult`; when `should_stop()` turns true it ends between batches
    with ProbeStopped, and nothing is saved.
    """
    from studio.evaluate.probe import DEFAULT_BATCH_SIZE, run_probe
    from studio.evaluate.probe_record import save_probe
    from studio.publish.report import write_report

    info = runs.read_run(rm.run_dir.parent, rm.run_id)  # a deleted run fails here, not after minutes of scoring
    with use_threads(thread_policy(rm.settings.train, info.threads or None)):
        result = run_probe(rm.model, rm.tokenizer, tasks, batch_size or DEFAULT_BATCH_SIZE, progress, should_stop)
    save_probe(rm.run_dir, result)
    if RunFolder(rm.run_dir).comparison_file.is_file():  # the report is written around the comparison
        write_report(rm.run_dir)
    return result


def _has_complete_comparison(run_dir: Path) -> bool:
    try:
        saved = load_comparison(run_dir)
    except RunError:
        return False
    return saved is not None and not saved.partial


def stopped_note(result: Comparison, run_dir: Path) -> str:
    """For a stopped comparison: how many examples it covers and whether it was saved ('' when not stopped)."""
    if not result.partial:
        return ""
    kept = " It was not saved: the run's earlier complete comparison stays." if _has_complete_comparison(run_dir) \
        else " Saved as the run's comparison, marked partial."
    return partial_note(result) + kept


def _capped(rows: list[Example], cap: int) -> list[Example]:
    return rows[:cap] if cap > 0 else rows


def score_snapshots_run(rm: RunModel, gen: GenerationSettings | None = None,
                        progress: Callable[[int, int, int], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> Timeline:
    """Score the base model and every snapshot of the run on its held-out (and validation) rows; save the timeline.

    The rows are those Compare uses (data.max_test_examples; the same cap for validation), answered at the length
    Compare's rule fits to their references, with the loop guard (no time budget: a 12-token limit made for word
    tasks would score long answers by their first words). A stopped scoring is saved unless the run already has a
    complete timeline, which is then kept.
    """
    folder, cap = RunFolder(rm.run_dir), rm.settings.data.max_test_examples
    validation = _capped(folder.read_split("validation", required=False), cap)
    info = runs.read_run(rm.run_dir.parent, rm.run_id)
    answering, _ = sized_to_references(gen or rm.settings.generation, rm.reference_lengths())
    with use_threads(thread_policy(rm.settings.train, info.threads or None)):  # as Compare: the run's own count
        timeline = score_snapshots(rm.model, rm.tokenizer, rm.template, folder, _capped(rm.test, cap), validation,
                                   answering, folder.read_metrics(), progress, should_stop)
    timeline.chosen_step = (info.adapter_choice or {}).get("step")
    earlier = load_timeline(rm.run_dir)
    if not (timeline.partial and earlier is not None and not earlier.partial):
        save_timeline(rm.run_dir, timeline)
    return timeline


def choose_snapshot(root: Path, run_id: str, owner: str, criterion: str) -> TimelinePoint:
    """Make the best snapshot by `criterion` (validation BLEU or eval loss) the run's adapter; the final one is kept."""
    info = runs.check_owner(runs.read_run(root, run_id), owner, "changed")
    timeline = load_timeline(info.path)
    if timeline is None:
        raise RunError(f"Score run {run_id}'s snapshots first, so there is something to choose from.")
    point = best_snapshot(timeline, criterion)
    value = point.validation.bleu if criterion == "validation_bleu" else point.eval_loss
    use_snapshot(info.folder, point.step, {"criterion": CRITERIA[criterion], "value": value,
                                           "final_step": timeline.final_step})
    timeline.chosen_step = point.step
    save_timeline(info.path, timeline)
    return point


def restore_final(root: Path, run_id: str, owner: str) -> None:
    """Make the run's final adapter its adapter again (undoing `choose_snapshot`)."""
    info = runs.check_owner(runs.read_run(root, run_id), owner, "changed")
    restore_final_adapter(info.folder)
    timeline = load_timeline(info.path)
    if timeline is not None:
        timeline.chosen_step = None
        save_timeline(info.path, timeline)
