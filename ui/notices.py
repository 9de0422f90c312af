"""What each tab says when it has nothing to show yet, and the cold-start banner while the embedded model is prepared.

The banner sits at the top of the Model, Train and Demo tabs; a `gr.Timer` refreshes it every second while the
app's warmup builds the model cache and stops once the model is ready. The empty states tell a visitor the next
step instead of leaving a blank panel.
"""
from __future__ import annotations

import html
from typing import Any

import gradio as gr
import pandas as pd

from studio.model.cache_progress import CacheProgress
from ui.context import Context

TICK_SECONDS = 1.0
BANNER_TABS = ("model", "train", "demo")
NO_RUN_TO_COMPARE = ("No run to compare yet.", "Train a run first, or open one from Runs.")
NOT_COMPARED = ("Not compared yet.", "Press Compare on the test split to answer the held-out prompts with the base "
                "model and the tuned model.")
NO_RUNS = ("No runs yet.", "Start training on the Train tab, or press ▶ Run the before/after demo on the Data tab; "
           "every run appears here.")
NO_DATA = ("No data loaded yet.", "Load a dataset on 1 · Data, or press ▶ Run the before/after demo there to train "
           "on the built-in sample in one click.")


def empty_html(message: tuple[str, str]) -> str:
    """An empty state: what is missing (bold) and what to do next."""
    title, body = message
    return f'<div class="empty-state"><strong>{html.escape(title)}</strong> {html.escape(body)}</div>'


def progress_bar(fraction: float, text: str, status: str = "") -> str:
    """A progress bar with a line of text under it (the Train tab's look)."""
    fill = max(0.0, min(1.0, fraction)) * 100
    head = f'<span class="progress-status">{html.escape(status)}</span>' if status else ""
    return (f'<div class="progress-wrap"><div class="progress-bar"><div class="progress-fill" style="width:{fill:.1f}%">'
            f'</div></div><div class="progress-text">{head}<span>{html.escape(text)}</span></div></div>')


def cache_banner_html(progress: CacheProgress | None) -> str:
    """The cold-start banner while the model is prepared (or why it failed); '' once it is ready."""
    if progress is None or progress.state in ("ready", "missing"):
        return ""
    if progress.state == "failed":
        return f'<div class="cold-start failed">{html.escape(progress.text())}</div>'
    return f'<div class="cold-start">{progress_bar(progress.fraction, progress.text())}</div>'


def runs_note(table: Any) -> Any:
    """The Runs tab's empty state, shown only while the runs table has no rows."""
    rows = len(table) if isinstance(table, pd.DataFrame) else len((table or {}).get("data") or [])
    return gr.update(visible=rows == 0)


def create_notice(ctx: Context, tab: str, value: str = "") -> Any:
    """An HTML slot at the top of a tab for its banner and empty state, registered as `ctx.notices[tab]`."""
    ctx.notices[tab] = gr.HTML(value, elem_classes="studio-notice")
    return ctx.notices[tab]


def create_runs_note(ctx: Context) -> Any:
    """The Runs tab's empty state (hidden as soon as the table lists a run)."""
    ctx.notices["runs"] = gr.HTML(empty_html(NO_RUNS), elem_classes="studio-notice")
    return ctx.notices["runs"]


def wire_notices(ctx: Context, demo: gr.Blocks) -> None:
    """Fill the notices on page load, tick while the cache builds, and refresh Train's hint when it is opened."""
    services = ctx.services
    cache_json = gr.JSON(visible=False)
    timer = gr.Timer(TICK_SECONDS, active=False)

    def cache() -> CacheProgress | None:
        return services.warmup.progress() if services.warmup is not None else None

    def train_notice(state: Any, owner: str, banner: str) -> str:
        job = services.jobs.get(owner) if owner else None
        return banner + (empty_html(NO_DATA) if state.loaded is None and job is None else "")

    def on_load(state: Any, browser_id: str) -> tuple:
        # The page-load handler that files the visitor's id may not have run yet: use the browser's id directly.
        return progress(state, browser_id)

    def progress(state: Any, browser_id: str = "") -> tuple:
        """The cold-start progress (JSON for API clients) and each tab's notice; the timer runs while it builds."""
        found = cache()
        banner = cache_banner_html(found)
        owner = state.owner or browser_id or ""
        details = found.as_dict() if found is not None else {"state": "ready", "text": ""}
        return (details, banner, train_notice(state, owner, banner), banner,
                gr.Timer(active=found is not None and found.building))

    outputs = [cache_json, *(ctx.notices[t] for t in BANNER_TABS), timer]
    timer.tick(progress, ctx.state, outputs, api_name="cache_progress", show_progress="hidden",
               concurrency_limit=None)
    demo.load(on_load, [ctx.state, ctx.browser_id], outputs, api_visibility="private", show_progress="hidden")
    ctx.tab_blocks["train"].select(lambda state: progress(state)[2], ctx.state, ctx.notices["train"],
                                   api_visibility="private", show_progress="hidden")
    ctx.runs.table.change(runs_note, ctx.runs.table, ctx.notices["runs"], api_visibility="private",
                          show_progress="hidden")
