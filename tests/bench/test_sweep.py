"""The validation sweep: candidates train on the sample's training rows and are scored on its validation rows."""
from __future__ import annotations

import pytest

from bench.sweep import run_candidate, sweep_table, validation_examples
from studio.presets import load_preset
from studio.settings import StudioSettings


def test_candidates_are_scored_on_validation_rows_only(tiny_loader):
    lines: list[str] = []
    spec = "train.max_steps=1,data.max_examples=8,generation.max_new_tokens=3"
    figures = run_candidate(spec, "cpu-demo", tiny_loader(), say=lines.append)
    assert figures["n_validation"] == 48 and figures["steps"] == 1 and figures["graded_tuned"] is None
    assert figures["bleu_ci"] is not None and lines and spec in lines[0]
    assert "validation sweep" in sweep_table([figures]) and "the test split was not read" in sweep_table([figures])


def test_docs_candidates_are_graded_and_other_data_is_refused():
    docs = validation_examples(load_preset("product-docs-cpu"))
    assert len(docs) == 56 and sum(e.output.startswith("Let's keep") for e in docs) == 6
    with pytest.raises(ValueError, match="no validation rows"):
        validation_examples(StudioSettings.from_dict({"data": {"dataset": "sample:chat"}}))
