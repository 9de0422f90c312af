"""The Data tab's steps: read a source into the session, split it, and describe the result for the page.

Kept apart from the layout in `data_tab.py`; each function calls the library and shapes its answer for a widget.
`load_into_state` is the one way data gets into a session: Load data, Apply mapping and the one-click demo.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.data.dataset import SAMPLE_PREFIX, example_table, load_source, prepare_splits
from studio.data.loaders import check_file
from studio.data.overlap import overlap_line
from studio.data.templates import choose_template, template_for
from studio.errors import DataError
from studio.settings import StudioSettings
from ui.services import Services
from ui.state import SessionState

SOURCES = ["Built-in sample", "Upload a file", "Hub dataset"]
ROLES = ("instruction", "input", "output")
# Which source each of (sample, sample info, upload, hub id, hub split) belongs to.
SOURCE_OF_WIDGET = (SOURCES[0], SOURCES[0], SOURCES[1], SOURCES[2], SOURCES[2])


def sample_spec(name: str) -> str:
    """The dataset spec of a built-in sample."""
    return f"{SAMPLE_PREFIX}{name}"


def source_spec(state: SessionState, source: str, sample: str, upload: str | None, hub_id: str | None,
                max_bytes: int) -> str:
    """The dataset spec for the chosen source; an upload is size-checked, then copied into the session's folder."""
    if source == SOURCES[1]:
        if not upload:
            raise DataError("Choose a file to upload first.")
        check_file(upload, max_bytes)  # before copying anything
        spec = state.upload_folder() / Path(upload).name
        if Path(upload).resolve() != spec.resolve():
            shutil.copyfile(upload, spec)
        return str(spec)
    if source == SOURCES[2]:
        if not (hub_id or "").strip():
            raise DataError("Type a Hub dataset id such as org/name first.")
        return (hub_id or "").strip()
    return sample_spec(sample)


def load_into_state(services: Services, state: SessionState, settings: StudioSettings, spec: str | None = None, *,
                    token: str | None = None, column_map: dict[str, str] | None = None,
                    progress: Callable[[float], None] | None = None) -> str:
    """Read a dataset into the session and split it; returns the template to train with (`choose_template`).

    A new `spec` replaces the session's data before reading, so a source that fails to read leaves nothing loaded
    (but its spec, for the column mapping). Without one the session's spec is read again, e.g. with a `column_map`
    made by hand, and what was loaded stays until that read succeeds. ShapeError (with the columns) means the
    columns must be mapped by hand.
    """
    if spec is not None:
        state.spec, state.loaded, state.splits, state.column_map, state.index = spec, None, None, {}, 0
    d = settings.data
    loaded = load_source(state.spec, column_map or None, hub_split=d.hub_split, token=token,
                         max_bytes=services.max_upload_bytes, strict=d.strict, keep_truncated=d.keep_truncated,
                         progress=progress)
    state.loaded, state.column_map, state.index = loaded, dict(column_map or {}), 0
    split(state, settings)
    return choose_template(d.template, loaded.recommended_template)


def split(state: SessionState, settings: StudioSettings) -> None:
    """Re-split the loaded data (if any) with the current filters."""
    if state.loaded is not None:
        state.splits = prepare_splits(state.loaded, settings.data)


def counts(state: SessionState) -> str:
    """The rows that survived the filters and how they were split, as markdown; then how many held-out prompts look
    like training prompts, when any do."""
    if state.loaded is None or state.splits is None:
        return "Load a dataset to see its row counts."
    c = state.splits.counts
    dropped = [f"{c[k]} {label}" for k, label in (("dropped_empty", "empty"), ("dropped_duplicates", "duplicates"),
               ("dropped_with_input", "with input"), ("dropped_overlap", "also in test")) if c.get(k)]
    note = f" (dropped {', '.join(dropped)})" if dropped else ""
    summary = state.loaded.summary  # rows skipped while loading are in its line, not in these counts
    usable = c["rows"] - (summary.n_skipped if summary is not None else 0)
    repeats = overlap_line(len(state.splits.near_duplicates))
    return (f"**{usable:,} usable rows** → **{c['train']:,} train** · **{c['test']:,} test** · "
            f"**{c['validation']:,} validation**{note}" + (f"  \n{repeats}" if repeats else ""))


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


def custom_template_box(template: str) -> Any:
    """The custom template box shows only for the "custom" template."""
    return gr.update(visible=template == "custom")


def source_widgets(source: str) -> list[Any]:
    """Show the widgets of the chosen source (sample, upload or Hub), hide the others."""
    return [gr.update(visible=source == owner) for owner in SOURCE_OF_WIDGET]


def suggested_size(size: float | None) -> Any:
    """Copy the suggested subset size into max examples (nothing when there is no suggestion)."""
    return gr.update(value=int(size)) if size else gr.update()


def moved(state: SessionState, index: float, delta: int) -> int:
    """The 1-based example number `delta` away from `index`, wrapping around the training examples."""
    return (int(index or 1) - 1 + delta) % max(1, len(state.examples())) + 1
