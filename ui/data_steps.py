"""The Data tab's steps: read a source into the session, split it, and describe the result for the page.

Kept apart from the layout in `data_tab.py`; each function calls the library and shapes its answer for a widget.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.data.dataset import example_table, load_source, prepare_splits
from studio.data.loaders import check_file
from studio.data.templates import template_for
from studio.errors import DataError
from studio.settings import StudioSettings
from ui.services import Services
from ui.state import SessionState

SOURCES = ["Built-in sample", "Upload a file", "Hub dataset"]
ROLES = ("instruction", "input", "output")


def _spec(state: SessionState, source: str, sample: str, upload: str | None, hub_id: str | None) -> str:
    """The dataset spec for the chosen source; uploads are copied into the session's own folder first."""
    if source == SOURCES[1]:
        if not upload:
            raise DataError("Choose a file to upload first.")
        spec = state.upload_folder() / Path(upload).name
        if Path(upload).resolve() != spec.resolve():
            shutil.copyfile(upload, spec)
        return str(spec)
    if source == SOURCES[2]:
        if not (hub_id or "").strip():
            raise DataError("Type a Hub dataset id such as org/name first.")
        return (hub_id or "").strip()
    return f"sample:{sample}"


def read_source(services: Services, state: SessionState, source: str, sample: str, upload: str | None,
                hub_id: str | None, token: str | None, settings: StudioSettings, column_map: dict[str, str],
                progress: Callable[[float], None] | None = None) -> None:
    """Load the chosen source into the state; ShapeError (with the columns) when they must be mapped by hand."""
    if source == SOURCES[1] and upload:  # check the size cap before copying anything
        check_file(upload, services.max_upload_bytes)
    spec = _spec(state, source, sample, upload, hub_id)
    state.spec, state.loaded, state.splits, state.column_map, state.index = spec, None, None, dict(column_map), 0
    d = settings.data
    state.loaded = load_source(spec, column_map or None, hub_split=d.hub_split, token=token,
                               max_bytes=services.max_upload_bytes, strict=d.strict, keep_truncated=d.keep_truncated,
                               progress=progress)


def split(state: SessionState, settings: StudioSettings) -> str:
    """Re-split the loaded data with the current filters; returns the counts as markdown."""
    if state.loaded is None:
        return "Load a dataset to see its row counts."
    state.splits = prepare_splits(state.loaded, settings.data)
    c = state.splits.counts
    dropped = [f"{c[k]} {label}" for k, label in (("dropped_empty", "empty"), ("dropped_duplicates", "duplicates"),
               ("dropped_with_input", "with input"), ("dropped_overlap", "also in test")) if c.get(k)]
    note = f" (dropped {', '.join(dropped)})" if dropped else ""
    summary = state.loaded.summary  # rows skipped while loading are in its line, not in these counts
    usable = c["rows"] - (summary.n_skipped if summary is not None else 0)
    return (f"**{usable:,} usable rows** → **{c['train']:,} train** · **{c['test']:,} test** · "
            f"**{c['validation']:,} validation**{note}")


def table(state: SessionState) -> pd.DataFrame:
    """The first training examples, clipped, as a table."""
    return pd.DataFrame(example_table(state.examples()), columns=list(ROLES))


def mapping_updates(columns: list[str], mapping: dict[str, str]) -> list[Any]:
    """The three column dropdowns offering `columns`, set to `mapping`."""
    choices = [("(none)", "")] + [(c, c) for c in columns]
    return [gr.update(choices=choices, value=mapping.get(role, "")) for role in ROLES]


def tokenizer_and_template(services: Services, settings: StudioSettings, token: str | None) -> tuple[Any, Any]:
    """The base model's tokenizer (cached) and the chosen template built with it."""
    tokenizer = services.tokenizer(settings.model, token=token or None)
    data = settings.data
    return tokenizer, template_for(data, tokenizer)
