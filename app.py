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
from studio.model.warmup import Warmup
from studio.presets import PRESET_DIR
from studio.runs import runs_dir, visitor_secret
from studio.settings import ModelSettings
from ui.chat_tab import create_chat_tab, wire_chat_tab
from ui.compare_tab import create_compare_tab, run_dropdown, wire_compare_tab
from ui.compat import gradio_queue
from ui.context import Context
from ui.data_tab import create_data_tab, wire_data_tab
from ui.demo_tab import create_demo_callout, create_demo_tab, wire_demo_tab
from ui.demo_view import CSS as DEMO_CSS
from ui.errors import guarded
from ui.model_tab import create_model_tab, wire_model_tab
from ui.notices import create_notice, create_runs_note, wire_notices
from ui.presentation import create_header, wire_presentation
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
from ui.theme import CSS, TITLE, theme
from ui.train_tab import create_train_tab, reattach, wire_train_tab
from ui.widgets import SettingsForm

# Generation and training share two CPU cores; more parallel events would only slow each other down.
CONCURRENCY = 2


def oauth_enabled() -> bool:
    """True on a Hugging Face Space whose README enables OAuth (`hf_oauth: true` sets OAUTH_CLIENT_ID there)."""
    return os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("OAUTH_CLIENT_ID"))


def build_app(model_loader: ModelLoader | None = None, tokenizer_loader: TokenizerLoader | None = None,
              runs_root: str | Path | None = None, job_factory: JobFactory | None = None,
              preset_dir: str | Path | None = None, oauth: bool | None = None,
              warmup: Warmup | None = None) -> gr.Blocks:
    """The studio as a gr.Blocks; loaders, the job factory and folders can be injected (tests use a tiny model).

    `oauth` offers "Sign in with Hugging Face" (default: only on a Space with OAuth enabled; elsewhere Gradio
    would need this machine to be logged in to the Hub to mock it). `warmup` (started here) builds the embedded
    model's cache in the background, as `main` does for a first start; without one, the pages still show a build
    that a training job or another process runs.
    """
    services = Services(
        runs_root=Path(runs_root).resolve() if runs_root else runs_dir(),
        model_loader=model_loader or default_model_loader,
        tokenizer_loader=tokenizer_loader or default_tokenizer_loader,
        job_factory=job_factory or default_job_factory,
        preset_dir=Path(preset_dir) if preset_dir else PRESET_DIR,
        warmup=warmup or (Warmup() if model_loader is None else None),  # unstarted: it only watches
    )
    if warmup is not None:
        warmup.start()  # a no-op when the cache is there
    with gr.Blocks(title=TITLE) as demo:
        presenting = create_header()
        visitor = gr.BrowserState("", storage_key="studio-visitor-id", secret=visitor_secret(services.runs_root))
        ctx = Context(services, new_state(), SettingsForm(), visitor,
                      oauth=oauth_enabled() if oauth is None else oauth)
        # "wrap": on a narrow screen the step names wrap onto a second line instead of hiding in a "..." menu.
        with gr.Tabs(overflow_behavior="wrap") as ctx.tabs:
            with gr.Tab("1 · Data", id="data"):
                shortcut = create_demo_callout()
                ctx.data = create_data_tab(ctx)
            with gr.Tab("2 · Model & LoRA", id="model"):
                create_notice(ctx, "model")
                ctx.model = create_model_tab(ctx)
            with gr.Tab("3 · Train", id="train") as ctx.tab_blocks["train"]:
                create_notice(ctx, "train")
                ctx.train = create_train_tab(ctx)
            with gr.Tab("4 · Compare", id="compare") as ctx.tab_blocks["compare"]:
                ctx.compare = create_compare_tab(ctx)
            with gr.Tab("5 · Runs", id="runs") as ctx.tab_blocks["runs"]:
                create_runs_note(ctx)
                ctx.runs = create_runs_tab(ctx)
            with gr.Tab("6 · Chat", id="chat") as ctx.tab_blocks["chat"]:
                ctx.chat = create_chat_tab(ctx)
            with gr.Tab("▶ Demo", id="demo") as ctx.tab_blocks["demo"]:
                ctx.demo = create_demo_tab(ctx)
                ctx.demo.shortcut = shortcut
        wire_data_tab(ctx, ctx.data)
        wire_model_tab(ctx, ctx.model)
        wire_train_tab(ctx, ctx.train)
        wire_compare_tab(ctx, ctx.compare)
        wire_runs_tab(ctx, ctx.runs)
        wire_chat_tab(ctx, ctx.chat)
        wire_demo_tab(ctx, ctx.demo, demo)
        wire_notices(ctx, demo)
        wire_presentation(demo, presenting)
        _wire_page_load(demo, ctx)
    demo.queue(default_concurrency_limit=CONCURRENCY)
    calm_queue(demo)
    return demo


# Gradio's queue looks for work every millisecond (and for progress to send every 10 ms) on the server's event loop:
# over a thousand wake-ups a second, each taking the GIL from the training thread in this process (`python -m bench
# app` measures what the idle server costs). 20 ms between looks still starts a click's work within a frame;
# progress bars update ten times a second.
QUEUE_IDLE_SLEEP_S = 0.02
QUEUE_PROGRESS_SLEEP_S = 0.1


def calm_queue(demo: gr.Blocks) -> None:
    """Make Gradio's queue look for work every QUEUE_IDLE_SLEEP_S instead of every millisecond
    (`ui.compat.gradio_queue` fails loudly if Gradio renames its private queue or knobs)."""
    queue = gradio_queue(demo)
    queue.sleep_when_free = QUEUE_IDLE_SLEEP_S
    queue.progress_update_sleep_when_free = QUEUE_PROGRESS_SLEEP_S


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

    view = [train.progress, train.plot, train.log, train.result, train.download, train.status, train.timer,
            train.shown]
    demo.load(on_load, [ctx.state, ctx.browser_id, train.smoothing, train.log_scale],
              [ctx.state, ctx.browser_id, *view, ctx.compare.run, ctx.runs.table, ctx.runs.run],
              api_visibility="private")


def launch_kwargs() -> dict:
    """Theme, CSS, and a hard upload limit well above the studio's own cap, whose message is the clearer one."""
    cap = max_upload_bytes()
    return {"theme": theme(), "css": CSS + DEMO_CSS, "max_file_size": max(2 * cap, cap + 64 * 2**20)}


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
    # A first start builds the embedded model's cache while the page comes up, not when the first visitor trains.
    studio = build_app(runs_root=args.runs_dir, warmup=Warmup())
    # Downloads (adapter zips, reports) live in the runs folder; Gradio serves only the working directory and the
    # temp folder unless told, so a runs folder elsewhere ($STUDIO_RUNS_DIR, --runs-dir) is allowed explicitly.
    root = Path(args.runs_dir).resolve() if args.runs_dir else runs_dir()
    studio.launch(server_name=args.host, server_port=args.port, allowed_paths=[str(root)], **launch_kwargs())


if __name__ == "__main__":
    main()
