"""After training: reopen a run through the injected loader, compare it, write results and the report."""
from __future__ import annotations

import json

import pytest

from studio import pipeline
from studio.errors import RunError
from studio.evaluate.comparison import load_comparison
from studio.runs import RunFolder, create_run, read_run
from studio.settings import GenerationSettings, StudioSettings
from tests.builders import TEST, make_finished_run


@pytest.fixture()
def finished(runs_dir, tiny_tokenizer):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    return run_dir


def test_open_run_loads_the_base_through_the_injected_loader_with_the_adapter(finished, runs_dir, tiny_loader):
    calls = []

    def loader(model_settings, token=None):
        calls.append((model_settings.model, token))
        return tiny_loader(model_settings)

    rm = pipeline.open_run(runs_dir, finished.name, token="hf_x", model_loader=loader)
    assert calls == [(StudioSettings().model.model, "hf_x")]
    assert rm.run_id == finished.name and rm.test == TEST and hasattr(rm.model, "disable_adapter")
    assert rm.template.name == rm.settings.data.template
    assert rm.base_label.startswith("Base: Gemma 3 270M") and finished.name in rm.tuned_label


def test_compare_run_saves_the_comparison_and_the_report(finished, runs_dir, tiny_loader):
    rm = pipeline.open_run(runs_dir, finished.name, model_loader=tiny_loader)
    result = pipeline.compare_run(rm, GenerationSettings(max_new_tokens=3), limit=1)
    assert result.base.n == 1 and load_comparison(finished) == result
    folder = RunFolder(finished)
    assert folder.report_html.is_file() and folder.report_md.is_file()
    assert json.loads(folder.comparison_file.read_text())["tuned"]["n"] == 1
    assert read_run(runs_dir, finished.name).bleu_tuned == result.tuned.bleu


def test_a_run_without_an_adapter_or_test_rows_is_refused(runs_dir, tiny_loader, tiny_tokenizer):
    bare = create_run(runs_dir, StudioSettings())
    with pytest.raises(RunError, match="no saved adapter"):
        pipeline.open_run(runs_dir, bare.run_id, model_loader=tiny_loader)
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    rm = pipeline.open_run(runs_dir, run_dir.name, model_loader=tiny_loader)
    rm.test = []
    with pytest.raises(RunError, match="no held-out examples"):
        pipeline.compare_run(rm)


def test_from_job_needs_a_trained_model(runs_dir):
    info = create_run(runs_dir, StudioSettings())
    job = type("Job", (), {"model": None, "run_dir": info.path})()
    with pytest.raises(RunError, match="no trained adapter"):
        pipeline.from_job(job)
