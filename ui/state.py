"""Per-visitor state kept in `gr.State`: the loaded data, its splits, the preview cursor and the current run."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr


@dataclass
class SessionState:
    """What one browser session (or one API client) is working on; never shared between visitors."""

    owner: str = ""  # stable browser id (localStorage) or "client-<session hash>" for API clients
    spec: str = ""  # the chosen dataset: "sample:NAME", an uploaded file's path or a Hub id (`loaded` once read)
    column_map: dict[str, str] = field(default_factory=dict)
    loaded: Any = None  # studio.data.dataset.LoadedDataset
    splits: Any = None  # studio.data.dataset.Splits
    index: int = 0  # which training example the template preview shows
    upload_dir: str = ""  # this session's temporary folder for uploads, removed when the session ends
    run_id: str = ""  # the run this visitor started last (Compare defaults to it)

    def upload_folder(self) -> Path:
        """This session's private temporary folder, created on first use."""
        if not self.upload_dir or not Path(self.upload_dir).is_dir():
            self.upload_dir = tempfile.mkdtemp(prefix="studio-upload-")
        return Path(self.upload_dir)

    def examples(self) -> list:
        """The training split if splits exist, else every loaded example."""
        if self.splits is not None:
            return list(self.splits.train)
        return list(self.loaded.examples) if self.loaded is not None else []


def owner_of(state: SessionState, request: gr.Request | None) -> str:
    """The id runs and jobs are filed under: the browser's stable id, else one per API client session."""
    if state.owner:
        return state.owner
    session = getattr(request, "session_hash", None) or "anonymous"
    state.owner = f"client-{session}"
    return state.owner


def cleanup(state: SessionState | None) -> None:
    """Delete the session's upload folder when Gradio drops the session."""
    if state is not None and state.upload_dir:
        shutil.rmtree(state.upload_dir, ignore_errors=True)


def new_state() -> gr.State:
    """The `gr.State` holding a fresh SessionState per visitor, cleaned up when the visitor leaves."""
    return gr.State(SessionState(), delete_callback=cleanup)
