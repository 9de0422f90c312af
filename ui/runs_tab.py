"""Runs tab: every past run with its status and results; open one in Compare, export or push it, delete your own."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.data.dataset import dataset_label
from studio.errors import RunError
from studio.model.info import model_title
from studio.publish import export
from studio.runs import check_owner, delete_run, list_runs, read_run
from ui.compare_tab import run_dropdown
from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState, owner_of

COLUMNS = ["Run", "Status", "Base model", "Dataset", "Final loss", "BLEU before", "BLEU after", "Yours"]


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
    zip_button: Any
    merge_button: Any
    download: Any
    repo: Any
    token: Any
    what: Any
    private: Any
    push: Any
    export_status: Any


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
    with gr.Accordion("Export or share the selected run", open=False):
        with gr.Row():
            zip_button = gr.Button("Adapter + model card (.zip)", size="sm")
            merge_button = gr.Button("Merged model (LoRA folded into the base weights)", size="sm")
        download = gr.File(label="Download", interactive=False)
        with gr.Row():
            repo = gr.Textbox(label="Hub repository", placeholder="your-name/my-adapter", scale=3)
            token = gr.Textbox(label="Hugging Face token (write access; used once, never saved)", type="password", scale=3)
            what = gr.Radio(["adapter", "merged"], value="adapter", label="Push", scale=2)
            private = gr.Checkbox(value=True, label="Private repository", scale=1)
        push = gr.Button("Push to the Hub", size="sm")
        export_status = gr.Markdown()
    return RunsTab(table, refresh, run, open_, delete, confirm_row, confirm_text, confirm, cancel,
                   zip_button, merge_button, download, repo, token, what, private, push, export_status)


def _number(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def runs_table(root: Path, owner: str) -> pd.DataFrame:
    """One row per run: status, base model, dataset, final loss, BLEU before/after, and whether it is yours."""
    rows = [[r.run_id, r.status, model_title(r.base_model), dataset_label(r.dataset), _number(r.final_loss),
             _number(r.bleu_base), _number(r.bleu_tuned), "yes" if r.owner and r.owner == owner else ""]
            for r in list_runs(root)]
    return pd.DataFrame(rows, columns=COLUMNS)


def wire_runs_tab(ctx: Context, tab: RunsTab) -> None:
    """Connect refresh, open-in-Compare and the two-step delete."""
    state, root = ctx.state, ctx.services.runs_root

    @guarded
    def list_all(state: SessionState, request: gr.Request) -> tuple:
        """The runs table and the run picker."""
        table = runs_table(root, owner_of(state, request))
        return table, gr.update(choices=list(table["Run"]), value=table["Run"].iloc[0] if len(table) else None)

    @guarded
    def open_in_compare(state: SessionState, run_id: str) -> tuple:
        """Switch to Compare with this run selected."""
        if not run_id:
            raise RunError("Choose a run first.")
        if not read_run(root, run_id).has_adapter:
            raise RunError(f"Run {run_id} has no saved adapter, so there is nothing to compare.")
        return run_dropdown(root, run_id), gr.Tabs(selected="compare")

    @guarded
    def ask_confirm(run_id: str) -> tuple:
        if not run_id:
            raise RunError("Choose a run first.")
        return gr.Row(visible=True), f"Delete run **{run_id}** and everything in its folder? This cannot be undone."

    @guarded
    def delete(state: SessionState, run_id: str, request: gr.Request) -> tuple:
        """Delete one of your own finished runs (another visitor's run is refused)."""
        delete_run(root, run_id, owner=owner_of(state, request))
        ctx.services.forget_run(run_id)
        gr.Info(f"Run {run_id} deleted.")
        return (gr.Row(visible=False), *list_all(state, request))

    def own_run(state: SessionState, run_id: str, request: gr.Request, action: str) -> Path:
        if not run_id:
            raise RunError("Choose a run first.")
        return check_owner(read_run(root, run_id), owner_of(state, request), action).path

    @guarded
    def zip_run(state: SessionState, run_id: str, request: gr.Request) -> tuple:
        """The adapter, tokenizer, model card and reproducibility bundle as one zip."""
        path = export.zip_adapter(own_run(state, run_id, request, "exported"))
        return str(path), f"Adapter zip ready: `{path.name}` (load it with `PeftModel.from_pretrained`)."

    @guarded
    def merge_run(state: SessionState, run_id: str, request: gr.Request) -> tuple:
        """Fold the LoRA into the base weights and save a full model with its tokenizer and card."""
        folder = export.merge_adapter(own_run(state, run_id, request, "exported"), base_loader=ctx.services.model_loader)
        card = folder / "README.md"
        status = (f"Merged model saved in `{folder}` (load it with `AutoModelForCausalLM.from_pretrained`); "
                  "its model card is offered for download.")
        return (str(card) if card.is_file() else None), status

    @guarded
    def push_run(state: SessionState, run_id: str, repo: str, token: str, what: str, private: bool,
                 request: gr.Request) -> str:
        """Push the adapter or merged model with the visitor's token (used for this call only)."""
        url = export.push_to_hub(own_run(state, run_id, request, "pushed"), repo.strip(), token, what=what,
                                 private=private, base_loader=ctx.services.model_loader)
        return f"Pushed the {what} of run {run_id} to {url}."

    tab.zip_button.click(zip_run, [state, tab.run], [tab.download, tab.export_status], api_name="export_adapter")
    tab.merge_button.click(merge_run, [state, tab.run], [tab.download, tab.export_status], api_name="export_merged")
    # The token box is cleared after every push so the secret does not linger in the page.
    tab.push.click(push_run, [state, tab.run, tab.repo, tab.token, tab.what, tab.private], tab.export_status,
                   api_name="push_to_hub").then(lambda: "", None, tab.token, api_visibility="private")
    tab.refresh.click(list_all, state, [tab.table, tab.run], api_name="list_runs")
    ctx.tab_blocks["runs"].select(list_all, state, [tab.table, tab.run], api_visibility="private")
    tab.open.click(open_in_compare, [state, tab.run], [ctx.compare.run, ctx.tabs], api_name="open_in_compare")
    tab.delete.click(ask_confirm, tab.run, [tab.confirm_row, tab.confirm_text], api_visibility="private")
    tab.cancel.click(lambda: gr.Row(visible=False), None, tab.confirm_row, api_visibility="private")
    tab.confirm.click(delete, [state, tab.run], [tab.confirm_row, tab.table, tab.run], api_name="delete_run")
