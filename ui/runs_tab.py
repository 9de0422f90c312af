"""Runs tab: every past run with its status and results; open one in Compare, export or push it, delete your own.

The sections below the table live in their own modules: Resume / Train more (`runs_actions`), Compare two runs
(`runs_compare`) and Export or share (`runs_export`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.data.dataset import dataset_label
from studio.errors import RunError
from studio.model.info import model_title
from studio.runs import RunInfo, delete_run, list_runs, read_run
from ui.compare_tab import run_dropdown
from ui.context import Context
from ui.errors import guarded
from ui.runs_actions import RunActions, create_run_actions, wire_run_actions
from ui.runs_compare import RunsCompare, create_runs_compare, wire_runs_compare
from ui.runs_export import RunsExport, create_runs_export, wire_runs_export
from ui.state import SessionState, owner_of

COLUMNS = ["Run", "Status", "Base model", "Dataset", "Final loss", "BLEU before", "BLEU after", "Launched", "Yours"]


@dataclass
class RunsTab:
    """The Runs tab's components that handlers read or write."""

    table: Any
    refresh: Any
    run: Any
    open: Any
    delete: Any
    confirm_row: Any
    confirm_text: Any
    confirm: Any
    cancel: Any
    actions: RunActions
    pair: RunsCompare
    export: RunsExport


def create_runs_tab(ctx: Context) -> RunsTab:
    """Lay out the Runs tab."""
    table = gr.Dataframe(headers=COLUMNS, label="Runs (newest first)", interactive=False, wrap=True,
                         max_height=480)
    with gr.Row():
        run = gr.Dropdown([], label="Run", scale=4, allow_custom_value=True)
        refresh = gr.Button("↻ Refresh", size="sm", scale=1)
        open_ = gr.Button("Open in Compare", size="sm", scale=1)
        delete = gr.Button("Delete…", size="sm", variant="stop", scale=1)
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm = gr.Button("Yes, delete it", variant="stop", size="sm")
        cancel = gr.Button("Cancel", size="sm")
    return RunsTab(table, refresh, run, open_, delete, confirm_row, confirm_text, confirm, cancel,
                   create_run_actions(), create_runs_compare(), create_runs_export(ctx))


def _number(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def launched_as(info: RunInfo) -> str:
    """How a run was launched, from run.json: "1 process", or "2 processes (gloo)" with the accelerate config's file
    name when it had one ("8 processes (nccl, fsdp.yaml)")."""
    if info.num_processes <= 1:
        return "1 process"
    how = info.backend or "backend not recorded"
    if info.accelerate_config:
        how += f", {Path(info.accelerate_config).name}"
    return f"{info.num_processes} processes ({how})"


def runs_table(root: Path, owner: str) -> pd.DataFrame:
    """One row per run: status, base model, dataset, final loss, BLEU before/after, how it was launched, and
    whether it is yours."""
    rows = [[r.run_id, r.status, model_title(r.base_model), dataset_label(r.dataset), _number(r.final_loss),
             _number(r.bleu_base), _number(r.bleu_tuned), launched_as(r),
             "yes" if r.owner and r.owner == owner else ""] for r in list_runs(root)]
    return pd.DataFrame(rows, columns=COLUMNS)


def hide_confirm() -> Any:
    """Hide the delete confirmation."""
    return gr.Row(visible=False)


class RunsHandlers:
    """The table's handlers: list, open in Compare, and the two-step delete, answered as {component: value}."""

    def __init__(self, ctx: Context, tab: RunsTab) -> None:
        self.ctx, self.tab, self.root = ctx, tab, ctx.services.runs_root

    @guarded
    def list_all(self, state: SessionState, request: gr.Request) -> dict:
        """The runs table and the run picker."""
        table = runs_table(self.root, owner_of(state, request))
        picked = table["Run"].iloc[0] if len(table) else None
        return {self.tab.table: table, self.tab.run: gr.update(choices=list(table["Run"]), value=picked)}

    @guarded
    def open_in_compare(self, state: SessionState, run_id: str) -> dict:
        """Switch to Compare with this run selected."""
        if not run_id:
            raise RunError("Choose a run first.")
        if not read_run(self.root, run_id).has_adapter:
            raise RunError(f"Run {run_id} has no saved adapter, so there is nothing to compare.")
        return {self.ctx.compare.run: run_dropdown(self.root, run_id), self.ctx.tabs: gr.Tabs(selected="compare")}

    @guarded
    def ask_confirm(self, run_id: str) -> dict:
        """Ask before deleting the chosen run."""
        if not run_id:
            raise RunError("Choose a run first.")
        return {self.tab.confirm_row: gr.Row(visible=True),
                self.tab.confirm_text: f"Delete run **{run_id}** and everything in its folder? This cannot be undone."}

    @guarded
    def delete(self, state: SessionState, run_id: str, request: gr.Request) -> dict:
        """Delete one of your own finished runs (another visitor's run is refused)."""
        delete_run(self.root, run_id, owner=owner_of(state, request))
        self.ctx.services.forget_run(run_id)
        gr.Info(f"Run {run_id} deleted.")
        return {self.tab.confirm_row: hide_confirm(), **self.list_all(state, request)}


def wire_runs_tab(ctx: Context, tab: RunsTab) -> None:
    """Connect refresh, open-in-Compare and the two-step delete, then the sections below the table."""
    state, on = ctx.state, RunsHandlers(ctx, tab)
    list_all = on.list_all  # bound once: Gradio groups events under one concurrency limit by their function's id
    tab.refresh.click(list_all, state, [tab.table, tab.run], api_name="list_runs")
    ctx.tab_blocks["runs"].select(list_all, state, [tab.table, tab.run], api_visibility="private")
    tab.open.click(on.open_in_compare, [state, tab.run], [ctx.compare.run, ctx.tabs], api_name="open_in_compare")
    tab.delete.click(on.ask_confirm, tab.run, [tab.confirm_row, tab.confirm_text], api_visibility="private")
    tab.cancel.click(hide_confirm, None, tab.confirm_row, api_visibility="private")
    tab.confirm.click(on.delete, [state, tab.run], [tab.confirm_row, tab.table, tab.run], api_name="delete_run")
    wire_run_actions(ctx, tab.actions, tab.run)
    wire_runs_compare(ctx, tab.pair, tab.run)
    wire_runs_export(ctx, tab.export, tab.run)
