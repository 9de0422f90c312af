"""Runs tab, "Export or share the selected run": the adapter zip, the merged model (a folder on the server, or a zip
to download, sized and disk-checked first), a GGUF + Ollama Modelfile for llama.cpp/Ollama and its check against the
studio's answers, and Hub pushes with a pasted token or, on a Space with OAuth, the visitor's own sign-in."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.errors import RunError
from studio.model.threads import on_own_thread
from studio.publish import export, gguf_export
from studio.publish.gguf import QUANTS
from studio.runs import RunFolder, check_owner, read_run
from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState, owner_of

CHECK_COLUMNS = ["Instruction", "Studio answer", "GGUF answer", "Equal"]
NO_RUN_SIZES = "Pick a run to see how large its downloads are."


@dataclass
class RunsExport:
    """The export and share components."""

    sizes: Any
    zip_button: Any
    merged_zip: Any
    merge_button: Any
    download: Any
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
    status: Any


def create_runs_export(ctx: Context) -> RunsExport:
    """Lay out the section (inside the Runs tab)."""
    with gr.Accordion("Export or share the selected run", open=False):
        sizes = gr.Markdown(NO_RUN_SIZES)
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
            token = gr.Textbox(label="Hugging Face token (write access; used once, never saved)", type="password",
                               scale=3)
            what = gr.Radio(["adapter", "merged"], value="adapter", label="Push", scale=2)
            private = gr.Checkbox(value=True, label="Private repository", scale=1)
        push = gr.Button("Push to the Hub", size="sm")
        status = gr.Markdown()
    return RunsExport(sizes, zip_button, merged_zip, merge_button, download, quant, gguf_button, verify_button,
                      gguf_status, gguf_files, check_table, login, repo, token, what, private, push, status)


def gb(n: float) -> str:
    """Bytes as GB, MB or kB, whichever reads best."""
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def sizes_text(run_dir: Path) -> str:
    """One line: how large each download of the run is, and how much disk the server has free."""
    estimates = gguf_export.size_estimates(run_dir)
    free = shutil.disk_usage(RunFolder(run_dir).path).free
    if not estimates:
        return f"Download sizes are known once written; {gb(free)} of disk is free on the server."
    shown = " · ".join(f"{label} about {gb(estimates[key])}" for key, label in
                       (("merged", "merged model zip"), ("gguf-f16", "GGUF f16"), ("gguf-q8_0", "GGUF q8_0")))
    return f"Sizes: {shown}; {gb(free)} of disk is free on the server."


def check_frame(rows: list[dict]) -> pd.DataFrame:
    """The GGUF check's rows as the table shows them."""
    return pd.DataFrame([[r["instruction"] + (f"\n{r['input']}" if r["input"] else ""), r["studio"], r["gguf"],
                          "yes" if r["equal"] else "no"] for r in rows], columns=CHECK_COLUMNS)


class ExportHandlers:
    """The section's handlers: each checks the run is the visitor's own, calls `studio.publish`, and says what
    it wrote."""

    def __init__(self, ctx: Context, section: RunsExport) -> None:
        self.services, self.root, self.section = ctx.services, ctx.services.runs_root, section

    def own_run(self, state: SessionState, run_id: str, request: gr.Request, action: str) -> Path:
        """The folder of the chosen run, refused unless it belongs to this visitor."""
        if not run_id:
            raise RunError("Choose a run first.")
        return check_owner(read_run(self.root, run_id), owner_of(state, request), action).path

    def _export(self, export_fn: Callable[..., Any], state: SessionState, run_id: str, request: gr.Request,
                progress: Any, *args: Any) -> Any:
        """Run an export of the visitor's own run with the injected base loader, reporting to the progress bar."""
        return on_own_thread(export_fn, self.own_run(state, run_id, request, "exported"), *args,
                         base_loader=self.services.model_loader,
                         progress=lambda fraction, message: progress(fraction, desc=message))

    def _download(self, path: Path | str | None, status: str) -> dict:
        return {self.section.download: path if path is None else str(path), self.section.status: status}

    @guarded
    def zip_run(self, state: SessionState, run_id: str, request: gr.Request) -> dict:
        """The adapter, tokenizer, model card and reproducibility bundle as one zip."""
        path = export.zip_adapter(self.own_run(state, run_id, request, "exported"))
        return self._download(path, f"Adapter zip ready: `{path.name}` (load it with `PeftModel.from_pretrained`).")

    @guarded
    def merge_run(self, state: SessionState, run_id: str, request: gr.Request, progress=gr.Progress()) -> dict:
        """Fold the LoRA into the base weights and save a full model with its tokenizer and card."""
        progress(0.1, desc="Loading the base model, merging the adapter and saving the full model")
        folder = on_own_thread(export.merge_adapter, self.own_run(state, run_id, request, "exported"),
                                      base_loader=self.services.model_loader)
        card = folder / "README.md"
        return self._download(card if card.is_file() else None,
                              f"Merged model saved in `{folder}` (load it with `AutoModelForCausalLM.from_pretrained`"
                              "); its model card is offered for download.")

    @guarded
    def merged_zip_run(self, state: SessionState, run_id: str, request: gr.Request, progress=gr.Progress()) -> dict:
        """The merged model, tokenizer, model card (and Gemma's terms) as one zip, sized and disk-checked first."""
        path = self._export(export.zip_merged, state, run_id, request, progress)
        return self._download(path, f"Merged model zip ready: `{path.name}` ({gb(path.stat().st_size)}; load it "
                                    "with `AutoModelForCausalLM.from_pretrained` after unzipping).")

    @guarded
    def gguf_run(self, state: SessionState, run_id: str, quant: str, request: gr.Request,
                 progress=gr.Progress()) -> dict:
        """The merged model as a GGUF file with its Ollama Modelfile and model card."""
        result = self._export(gguf_export.export_gguf, state, run_id, request, progress, quant)
        files = sorted(str(p) for p in result.path.parent.iterdir() if p.is_file())
        return {self.section.gguf_files: files, self.section.gguf_status: (
            f"GGUF written: `{result.path.name}` ({gb(result.size_bytes)}). In Ollama: `ollama create my-model -f "
            "Modelfile`, then `ollama run my-model`; press **Verify export** to check its answers against the "
            "studio's.")}

    @guarded
    def verify_run(self, state: SessionState, run_id: str, quant: str, request: gr.Request,
                   progress=gr.Progress()) -> dict:
        """Answer the held-out prompts from the GGUF file and compare with the studio's tuned answers."""
        check = self._export(gguf_export.verify_export, state, run_id, request, progress, quant)
        return {self.section.check_table: check_frame(check.rows),
                self.section.gguf_status: check.summary() + " Saved in the model card."}

    @guarded
    def show_sizes(self, run_id: str) -> str:
        """How large the selected run's downloads are and how much disk is free."""
        return sizes_text(read_run(self.root, run_id).path) if run_id else NO_RUN_SIZES

    @guarded
    def push_run(self, state: SessionState, run_id: str, repo: str, token: str, what: str, private: bool,
                 request: gr.Request, oauth_token: gr.OAuthToken | None, profile: gr.OAuthProfile | None,
                 progress=gr.Progress()) -> str:
        """Push with the pasted token, else the signed-in visitor's (both used for this call only)."""
        progress(0.1, desc=f"Pushing the {what} to the Hub")
        repo, token = repo.strip(), (token or "").strip()
        if not token and oauth_token is not None:
            token = oauth_token.token
            if "/" not in repo and profile is not None and repo:
                repo = f"{profile.username}/{repo}"  # a bare name goes to the visitor's own namespace
        url = export.push_to_hub(self.own_run(state, run_id, request, "pushed"), repo, token, what=what,
                                 private=private, base_loader=self.services.model_loader)
        return f"Pushed the {what} of run {run_id} to {url}."


def clear_token() -> str:
    """An empty token box."""
    return ""


def wire_runs_export(ctx: Context, section: RunsExport, run: Any) -> None:
    """Connect the export, check and push buttons to the run picked in `run`."""
    state, on = ctx.state, ExportHandlers(ctx, section)
    to_download = [section.download, section.status]
    section.zip_button.click(on.zip_run, [state, run], to_download, api_name="export_adapter")
    section.merge_button.click(on.merge_run, [state, run], to_download, api_name="export_merged")
    section.merged_zip.click(on.merged_zip_run, [state, run], to_download, api_name="export_merged_zip")
    section.gguf_button.click(on.gguf_run, [state, run, section.quant], [section.gguf_files, section.gguf_status],
                              api_name="export_gguf")
    section.verify_button.click(on.verify_run, [state, run, section.quant], [section.check_table, section.gguf_status],
                                api_name="verify_export")
    run.change(on.show_sizes, run, section.sizes, api_name="export_sizes")
    # The token box is cleared after every push so the secret does not linger in the page.
    section.push.click(on.push_run, [state, run, section.repo, section.token, section.what, section.private],
                       section.status, api_name="push_to_hub").then(clear_token, None, section.token,
                                                                     api_visibility="private")
