"""Runs tab: every past run with its status and results; open one in Compare, export or push it, delete your own.

Exports: the adapter zip, the merged model (a folder on the server, or a zip to download, sized and disk-checked
first), a GGUF + Ollama Modelfile for llama.cpp/Ollama and its check against the studio's answers, and Hub pushes
with a pasted token or, on a Space with OAuth, the visitor's own sign-in.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.data.dataset import dataset_label
from studio.errors import RunError
from studio.model.info import model_title
from studio.publish import export, gguf_export
from studio.publish.gguf import QUANTS
from studio.runs import RunFolder, check_owner, delete_run, list_runs, read_run
from ui.compare_tab import run_dropdown
from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState, owner_of

COLUMNS = ["Run", "Status", "Base model", "Dataset", "Final loss", "BLEU before", "BLEU after", "Yours"]
CHECK_COLUMNS = ["Instruction", "Studio answer", "GGUF answer", "Equal"]


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
    merged_zip: Any
    download: Any
    sizes: Any
    quant: Any
    gguf_button: Any
    verify_button: Any
    gguf_status: Any
    gguf_files: Any
    check_table: Any
    login: Any
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
        sizes = gr.Markdown("Pick a run to see how large its downloads are.")
        with gr.Row():
            zip_button = gr.Button("Adapter + model card (.zip)", size="sm")
            merged_zip = gr.Button("Merged model (.zip download)", size="sm")
            merge_button = gr.Button("Merged model (folder on the server)", size="sm")
        download = gr.File(label="Download", interactive=False, height=110)
        gr.Markdown("**Run it in llama.cpp or Ollama**: the merged model as one GGUF file with an Ollama "
                    "Modelfile that rebuilds this run's prompt template, stop strings and defaults.")
        with gr.Row():
            quant = gr.Radio(list(QUANTS), value=QUANTS[0], label="GGUF precision", scale=2,
                             info="f16 keeps the trained weights (to 16 bits); q8_0 is about half the size.")
            gguf_button = gr.Button("GGUF + Ollama Modelfile", size="sm", scale=1)
            verify_button = gr.Button("Verify export", size="sm", scale=1)
        gguf_status = gr.Markdown()
        gguf_files = gr.File(label="GGUF export", file_count="multiple", interactive=False, height=110)
        check_table = gr.Dataframe(headers=CHECK_COLUMNS, label="Verify export: the GGUF's answers next to the "
                                   "studio's", interactive=False, wrap=True, max_height=320)
        with gr.Row():
            # On a Space with OAuth a visitor signs in instead of pasting a token (the token box stays for local use).
            login = gr.LoginButton(size="sm", scale=1) if ctx.oauth else None
            repo = gr.Textbox(label="Hub repository", placeholder="your-name/my-adapter", scale=3)
            token = gr.Textbox(label="Hugging Face token (write access; used once, never saved)", type="password", scale=3)
            what = gr.Radio(["adapter", "merged"], value="adapter", label="Push", scale=2)
            private = gr.Checkbox(value=True, label="Private repository", scale=1)
        push = gr.Button("Push to the Hub", size="sm")
        export_status = gr.Markdown()
    return RunsTab(table, refresh, run, open_, delete, confirm_row, confirm_text, confirm, cancel, zip_button,
                   merge_button, merged_zip, download, sizes, quant, gguf_button, verify_button, gguf_status, gguf_files,
                   check_table, login, repo, token, what, private, push, export_status)


def _gb(n: float) -> str:
    """Bytes as GB, MB or kB, whichever reads best."""
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def sizes_text(run_dir: Path) -> str:
    """One line: how large each download of the run is, and how much disk the server has free."""
    estimates = gguf_export.size_estimates(run_dir)
    free = shutil.disk_usage(RunFolder(run_dir).path).free
    if not estimates:
        return f"Download sizes are known once written; {_gb(free)} of disk is free on the server."
    shown = " · ".join(f"{label} about {_gb(estimates[key])}" for key, label in
                       (("merged", "merged model zip"), ("gguf-f16", "GGUF f16"), ("gguf-q8_0", "GGUF q8_0")))
    return f"Sizes: {shown}; {_gb(free)} of disk is free on the server."


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

    def exporting(export_fn: Any, state: SessionState, run_id: str, request: gr.Request, progress: Any,
                  *args: Any) -> Any:
        """Run an export of the visitor's own run with the injected base loader, reporting to the progress bar."""
        return export_fn(own_run(state, run_id, request, "exported"), *args, base_loader=ctx.services.model_loader,
                         progress=lambda fraction, message: progress(fraction, desc=message))

    @guarded
    def merged_zip_run(state: SessionState, run_id: str, request: gr.Request, progress=gr.Progress()) -> tuple:
        """The merged model, tokenizer, model card (and Gemma's terms) as one zip, sized and disk-checked first."""
        path = exporting(export.zip_merged, state, run_id, request, progress)
        return str(path), (f"Merged model zip ready: `{path.name}` ({_gb(path.stat().st_size)}; load it with "
                           "`AutoModelForCausalLM.from_pretrained` after unzipping).")

    @guarded
    def gguf_run(state: SessionState, run_id: str, quant: str, request: gr.Request, progress=gr.Progress()) -> tuple:
        """The merged model as a GGUF file with its Ollama Modelfile and model card."""
        result = exporting(gguf_export.export_gguf, state, run_id, request, progress, quant)
        files = sorted(str(p) for p in result.path.parent.iterdir() if p.is_file())
        return files, (f"GGUF written: `{result.path.name}` ({_gb(result.size_bytes)}). In Ollama: "
                       f"`ollama create my-model -f Modelfile`, then `ollama run my-model`; press **Verify "
                       "export** to check its answers against the studio's.")

    @guarded
    def verify_run(state: SessionState, run_id: str, quant: str, request: gr.Request, progress=gr.Progress()) -> tuple:
        """Answer the held-out prompts from the GGUF file and compare with the studio's tuned answers."""
        check = exporting(gguf_export.verify_export, state, run_id, request, progress, quant)
        rows = [[r["instruction"] + (f"\n{r['input']}" if r["input"] else ""), r["studio"], r["gguf"],
                 "yes" if r["equal"] else "no"] for r in check.rows]
        return pd.DataFrame(rows, columns=CHECK_COLUMNS), check.summary() + " Saved in the model card."

    @guarded
    def show_sizes(run_id: str) -> str:
        """How large the selected run's downloads are and how much disk is free."""
        return sizes_text(read_run(root, run_id).path) if run_id else "Pick a run to see how large its downloads are."

    @guarded
    def push_run(state: SessionState, run_id: str, repo: str, token: str, what: str, private: bool,
                 request: gr.Request, oauth_token: gr.OAuthToken | None, profile: gr.OAuthProfile | None) -> str:
        """Push with the pasted token, else the signed-in visitor's (both used for this call only)."""
        repo, token = repo.strip(), (token or "").strip()
        if not token and oauth_token is not None:
            token = oauth_token.token
            if "/" not in repo and profile is not None and repo:
                repo = f"{profile.username}/{repo}"  # a bare name goes to the visitor's own namespace
        url = export.push_to_hub(own_run(state, run_id, request, "pushed"), repo, token, what=what,
                                 private=private, base_loader=ctx.services.model_loader)
        return f"Pushed the {what} of run {run_id} to {url}."

    tab.zip_button.click(zip_run, [state, tab.run], [tab.download, tab.export_status], api_name="export_adapter")
    tab.merge_button.click(merge_run, [state, tab.run], [tab.download, tab.export_status], api_name="export_merged")
    tab.merged_zip.click(merged_zip_run, [state, tab.run], [tab.download, tab.export_status],
                         api_name="export_merged_zip")
    tab.gguf_button.click(gguf_run, [state, tab.run, tab.quant], [tab.gguf_files, tab.gguf_status],
                          api_name="export_gguf")
    tab.verify_button.click(verify_run, [state, tab.run, tab.quant], [tab.check_table, tab.gguf_status],
                            api_name="verify_export")
    tab.run.change(show_sizes, tab.run, tab.sizes, api_name="export_sizes")
    # The token box is cleared after every push so the secret does not linger in the page.
    tab.push.click(push_run, [state, tab.run, tab.repo, tab.token, tab.what, tab.private], tab.export_status,
                   api_name="push_to_hub").then(lambda: "", None, tab.token, api_visibility="private")
    tab.refresh.click(list_all, state, [tab.table, tab.run], api_name="list_runs")
    ctx.tab_blocks["runs"].select(list_all, state, [tab.table, tab.run], api_visibility="private")
    tab.open.click(open_in_compare, [state, tab.run], [ctx.compare.run, ctx.tabs], api_name="open_in_compare")
    tab.delete.click(ask_confirm, tab.run, [tab.confirm_row, tab.confirm_text], api_visibility="private")
    tab.cancel.click(lambda: gr.Row(visible=False), None, tab.confirm_row, api_visibility="private")
    tab.confirm.click(delete, [state, tab.run], [tab.confirm_row, tab.table, tab.run], api_name="delete_run")
