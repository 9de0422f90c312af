"""The named steps after training, shared by the CLI and the UI: reopen a run -> compare -> report."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio import runs
from studio.errors import RunError
from studio.evaluation import Comparison, compare, save_comparison
from studio.examples import Example
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
        from studio.modeling import model_title

        return f"Base: {model_title(self.settings.model.model)} (adapter disabled)"

    @property
    def tuned_label(self) -> str:
        """Which weights produce the 'after' answers."""
        return f"Tuned: run {self.run_id} adapter"


def read_split(run_dir: Path, name: str) -> list[Example]:
    """Examples of a split saved in the run folder (data/<name>.jsonl)."""
    path = run_dir / "data" / f"{name}.jsonl"
    if not path.is_file():
        raise RunError(f"Run {run_dir.name} has no saved {name} split.")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Example.from_row(json.loads(line)) for line in lines if line.strip()]


def from_job(job: Any) -> RunModel:
    """Reuse a finished TrainingJob's in-memory model instead of reloading it."""
    if job.model is None or not (job.run_dir / "adapter").is_dir():
        raise RunError("This run has no trained adapter to compare yet.")
    return RunModel(job.run_id, job.run_dir, job.model, job.tokenizer, job.template,
                    list(job.splits.test), job.settings)


def open_run(root: Path, run_id: str, token: str | None = None, model_loader: Callable[..., Any] | None = None) -> RunModel:
    """Load a past run's base model (through `model_loader` if given) with its adapter on top, for Compare."""
    from peft import PeftModel

    from studio import modeling
    from studio.templates import get_template

    info = runs.read_run(root, run_id)
    if not info.has_adapter:
        raise RunError(f"Run {run_id} has no saved adapter, so there is nothing to compare.")
    settings = runs.read_settings(info.path)
    loaded = (model_loader or modeling.load_base_model)(settings.model, token=token)
    model = PeftModel.from_pretrained(loaded.model, str(info.path / "adapter"))
    model.eval()
    data = settings.data
    template = get_template(data.template, custom=data.custom_template, tokenizer=loaded.tokenizer, system=data.system_prompt)
    return RunModel(run_id, info.path, model, loaded.tokenizer, template, read_split(info.path, "test"), settings)


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
    from studio.report import write_report

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
