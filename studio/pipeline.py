"""The named steps after training, shared by the CLI and the UI: reopen a run -> compare -> report."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio import runs
from studio.errors import RunError
from studio.evaluate.before_after import compare
from studio.evaluate.comparison import Comparison, save_comparison
from studio.examples import Example
from studio.runs import RunFolder
from studio.settings import GenerationSettings, StudioSettings


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

    @property
    def base_label(self) -> str:
        """Which weights produce the 'before' answers."""
        from studio.model.info import model_title

        return f"Base: {model_title(self.settings.model.model)} (adapter disabled)"

    @property
    def tuned_label(self) -> str:
        """Which weights produce the 'after' answers."""
        return f"Tuned: run {self.run_id} adapter"


def from_job(job: Any) -> RunModel:
    """Reuse a finished TrainingJob's in-memory model instead of reloading it."""
    if job.model is None or not RunFolder(job.run_dir).has_adapter():
        raise RunError("This run has no trained adapter to compare yet.")
    return RunModel(job.run_id, job.run_dir, job.model, job.tokenizer, job.template,
                    list(job.splits.test), job.settings)


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
    return RunModel(run_id, info.path, model, loaded.tokenizer, template, folder.read_split("test"), settings)


def compare_run(
    rm: RunModel,
    gen: GenerationSettings | None = None,
    limit: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Comparison:
    """Answer the held-out prompts with base and tuned weights, score them, save results and the report.

    When `should_stop()` turns true it ends between batches with GenerationStopped, and nothing is saved.
    """
    from studio.publish.report import write_report

    examples = rm.test[:limit] if limit > 0 else rm.test
    if not examples:
        raise RunError("This run has no held-out examples to compare on.")
    runs.read_run(rm.run_dir.parent, rm.run_id)  # a deleted run fails here, not after minutes of generation
    result = compare(rm.model, rm.tokenizer, rm.template, examples, gen or rm.settings.generation,
                     progress=progress, should_stop=should_stop)
    try:
        save_comparison(rm.run_dir, result)
    except FileNotFoundError:
        raise RunError(f"Run folder {rm.run_id} was deleted while it was being compared.") from None
    write_report(rm.run_dir)
    return result


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

    runs.read_run(rm.run_dir.parent, rm.run_id)  # a deleted run fails here, not after minutes of scoring
    result = run_probe(rm.model, rm.tokenizer, tasks, batch_size or DEFAULT_BATCH_SIZE, progress, should_stop)
    save_probe(rm.run_dir, result)
    if RunFolder(rm.run_dir).comparison_file.is_file():  # the report is written around the comparison
        write_report(rm.run_dir)
    return result
