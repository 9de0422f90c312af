"""Instruction-Tuning Studio: `python app.py` opens the Gradio UI (a thin layer over the `studio` library).

    python app.py                      # http://127.0.0.1:7860, embedded Gemma 3 270M, sample data
    python app.py --host 0.0.0.0       # every interface (a Space sets GRADIO_SERVER_NAME itself)
    python app.py --port 8080          # or GRADIO_SERVER_PORT; runs go to $STUDIO_RUNS_DIR (default ./runs)
"""
from __future__ import annotations

import argparse
import logging
import os
import uuid
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from studio.cli import quiet_library_warnings
from studio.presets import PRESET_DIR
from studio.runs import runs_dir
from studio.settings import ModelSettings
from ui.compare_tab import create_compare_tab, run_dropdown, wire_compare_tab
from ui.context import Context
from ui.data_tab import create_data_tab, wire_data_tab
from ui.errors import guarded
from ui.model_tab import create_model_tab, wire_model_tab
from ui.runs_tab import create_runs_tab, runs_table, wire_runs_tab
from ui.services import (
    JobFactory,
    ModelLoader,
    Services,
    TokenizerLoader,
    default_job_factory,
    default_model_loader,
    default_tokenizer_loader,
    max_upload_bytes,
)
from ui.state import SessionState, new_state
from ui.theme import CSS, TITLE, header_html, theme
from ui.train_tab import create_train_tab, reattach, wire_train_tab
from ui.widgets import SettingsForm

# Generation and training share two CPU cores; more parallel events would only slow each other down.
CONCURRENCY = 2


def oauth_enabled() -> bool:
    """True on a Hugging Face Space whose README enables OAuth (`hf_oauth: true` sets OAUTH_CLIENT_ID there)."""
    return os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("OAUTH_CLIENT_ID"))


def build_app(model_loader: ModelLoader | None = None, tokenizer_loader: TokenizerLoader | None = None,
              runs_root: str | Path | None = None, job_factory: JobFactory | None = None,
              preset_dir: str | Path | None = None, oauth: bool | None = None) -> gr.Blocks:
    """The studio as a gr.Blocks; loaders, the job factory and folders can be injected (tests use a tiny model).

    `oauth` offers "Sign in with Hugging Face" (default: only on a Space with OAuth enabled; elsewhere Gradio
    would need this machine to be logged in to the Hub to mock it).
    """
    services = Services(
        runs_root=Path(runs_root).resolve() if runs_root else runs_dir(),
        model_loader=model_loader or default_model_loader,
        tokenizer_loader=tokenizer_loader or default_tokenizer_loader,
        job_factory=job_factory or default_job_factory,
        preset_dir=Path(preset_dir) if preset_dir else PRESET_DIR,
    )
    with gr.Blocks(title=TITLE) as demo:
        gr.HTML(header_html())
        ctx = Context(services, new_state(), SettingsForm(), gr.BrowserState("", storage_key="studio-visitor-id"),
                      oauth=oauth_enabled() if oauth is None else oauth)
        with gr.Tabs() as ctx.tabs:
            with gr.Tab("1 · Data", id="data"):
                ctx.data = create_data_tab(ctx)
            with gr.Tab("2 · Model & LoRA", id="model"):
                ctx.model = create_model_tab(ctx)
            with gr.Tab("3 · Train", id="train"):
                ctx.train = create_train_tab(ctx)
            with gr.Tab("4 · Compare", id="compare") as ctx.tab_blocks["compare"]:
                ctx.compare = create_compare_tab(ctx)
            with gr.Tab("5 · Runs", id="runs") as ctx.tab_blocks["runs"]:
                ctx.runs = create_runs_tab(ctx)
        wire_data_tab(ctx, ctx.data)
        wire_model_tab(ctx, ctx.model)
        wire_train_tab(ctx, ctx.train)
        wire_compare_tab(ctx, ctx.compare)
        wire_runs_tab(ctx, ctx.runs)
        _wire_page_load(demo, ctx)
    demo.queue(default_concurrency_limit=CONCURRENCY)
    return demo


def _wire_page_load(demo: gr.Blocks, ctx: Context) -> None:
    """On every page load: adopt the browser's stable id, reattach to its job, list runs, warm the tokenizer."""
    train = ctx.train

    @guarded
    def on_load(state: SessionState, browser_id: str, smoothing: float, log_scale: bool) -> tuple:
        state.owner = browser_id or f"browser-{uuid.uuid4().hex}"
        ctx.services.warm_tokenizer(ModelSettings())
        job = ctx.services.jobs.get(state.owner)
        if job is not None:
            state.run_id = job.run_id
        table = runs_table(ctx.services.runs_root, state.owner)
        return (state, state.owner, *reattach(ctx, state, smoothing, log_scale),
                run_dropdown(ctx.services.runs_root, state.run_id), table,
                gr.update(choices=list(table["Run"]), value=table["Run"].iloc[0] if len(table) else None))

    view = [train.progress, train.plot, train.log, train.result, train.download, train.status, train.timer]
    demo.load(on_load, [ctx.state, ctx.browser_id, train.smoothing, train.log_scale],
              [ctx.state, ctx.browser_id, *view, ctx.compare.run, ctx.runs.table, ctx.runs.run],
              api_visibility="private")


def launch_kwargs() -> dict:
    """Theme, CSS, and a hard upload limit well above the studio's own cap, whose message is the clearer one."""
    cap = max_upload_bytes()
    return {"theme": theme(), "css": CSS, "max_file_size": max(2 * cap, cap + 64 * 2**20)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """--host / --port / --runs-dir, defaulting to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT / STUDIO_RUNS_DIR."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="interface to bind (0.0.0.0 for all; default 127.0.0.1 or $GRADIO_SERVER_NAME)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--runs-dir", default=None, help="where runs are stored (default $STUDIO_RUNS_DIR or ./runs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the studio and block until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_library_warnings()
    args = parse_args(argv)
    build_app(runs_root=args.runs_dir).launch(server_name=args.host, server_port=args.port, **launch_kwargs())


if __name__ == "__main__":
    main()
