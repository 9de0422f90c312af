"""Train tab: start/stop one LoRA run, watch loss, progress and log live, download the adapter at the end.

A `gr.Timer` ticks only while the visitor's job is active. Jobs are filed by the visitor's stable browser id, so a
reload or a second tab reattaches to the same job instead of losing it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from studio.errors import DataError, RunError
from studio.publish import export
from studio.publish.plots import loss_figure
from studio.runs import RunFolder
from ui.context import Context
from ui.errors import guarded
from ui.model_tab import current_settings
from ui.services import is_active
from ui.state import SessionState, owner_of
from ui.theme import progress_html

TICK_SECONDS = 1.0
LOG_LINES = 8  # fewer than the box's 12 rows (long lines wrap), so the newest line is always in view


@dataclass
class TrainTab:
    """The Train tab's components that handlers read or write."""

    start: Any
    stop: Any
    progress: Any
    plot: Any
    smoothing: Any
    log_scale: Any
    log: Any
    result: Any
    download: Any
    status: Any
    timer: Any


def create_train_tab(ctx: Context) -> TrainTab:
    """Lay out the Train tab."""
    with gr.Row():
        start = gr.Button("Start training", variant="primary", scale=3)
        stop = gr.Button("Stop (keeps the adapter trained so far)", variant="stop", scale=2)
    progress = gr.HTML(progress_html("idle"))
    with gr.Row():
        with gr.Column(scale=3):
            plot = gr.Plot(label="Training loss", elem_id="loss-plot")
        with gr.Column(scale=2):  # the view settings hide in presentation mode; the log stays
            smoothing = gr.Slider(0.0, 0.95, value=0.0, step=0.05, label="Smoothing",
                                  info="Exponential moving average of the loss curve.", elem_classes="studio-settings")
            log_scale = gr.Checkbox(False, label="Log scale", info="Show the loss on a logarithmic axis.",
                                    elem_classes="studio-settings")
            log = gr.Textbox(label="Log", lines=12, max_lines=12, autoscroll=True, interactive=False)
    result = gr.Markdown()
    download = gr.DownloadButton("Download the adapter (.zip)", visible=False)
    with gr.Accordion("Status details (JSON)", open=False, elem_classes="studio-settings"):
        status = gr.JSON()
    timer = gr.Timer(TICK_SECONDS, active=False)
    return TrainTab(start, stop, progress, plot, smoothing, log_scale, log, result, download, status, timer)


def adapter_zip(run_dir: Path) -> str | None:
    """The run's adapter zip (adapter, tokenizer, model card, reproduce bundle), or None when it has no adapter.

    The same file the Runs tab hands out (`export.zip_adapter`).
    """
    if not RunFolder(run_dir).has_adapter():
        return None
    return str(export.zip_adapter(run_dir))


def job_view(job: Any, smoothing: float, log_scale: bool) -> tuple:
    """(progress html, loss figure, log text, result markdown, download update, status dict, timer update)."""
    from studio.jobqueue import queue_position

    if job is None:
        return (progress_html("idle"), None, "", "", gr.update(visible=False), {}, gr.Timer(active=False))
    progress, status = job.progress(), job.status
    position = queue_position(job) if status == "queued" else None
    history = job.history()
    figure = loss_figure(history, smoothing, log_scale) if history else None
    logs = "\n".join(job.logs()[-LOG_LINES:])
    active = is_active(job)
    result, download = "", gr.update(visible=False)
    if not active:
        result = f"**{status.capitalize()}.** {job.message or job.error or ''}"
        path = adapter_zip(Path(job.run_dir)) if job.run_dir else None
        download = gr.update(value=path, visible=bool(path))
    details = {"run_id": job.run_id, "status": status, "queue_position": position, **progress}
    return (progress_html(status, progress, position), figure, logs, result, download, details,
            gr.Timer(active=active))


def wire_train_tab(ctx: Context, tab: TrainTab) -> None:
    """Connect start, stop and the timer that polls the visitor's job."""
    state, services = ctx.state, ctx.services
    view = [tab.progress, tab.plot, tab.log, tab.result, tab.download, tab.status, tab.timer]

    @guarded
    def train(state: SessionState, token: str, request: gr.Request, **values: Any) -> tuple:
        """Start LoRA training with every current setting on the loaded data; returns the first progress view."""
        if not state.spec:
            raise DataError("Load a dataset on the Data tab before starting training.")
        owner = owner_of(state, request)
        settings = current_settings(ctx, state, values)
        job = services.new_job(settings, owner=owner, token=token or None)
        services.jobs.add(owner, job)
        job.start()
        state.run_id = job.run_id
        return state, *job_view(job, 0.0, False)

    @guarded
    def progress(state: SessionState, smoothing: float, log_scale: bool, request: gr.Request) -> tuple:
        """The visitor's job as it stands: progress bar, loss chart, log, result and adapter download."""
        job = services.jobs.get(owner_of(state, request))
        return job_view(job, smoothing, log_scale)

    @guarded
    def stop(state: SessionState, request: gr.Request) -> str:
        """Ask the visitor's running job to stop after the current step; the adapter so far is saved."""
        job = services.jobs.get(owner_of(state, request))
        if job is None or not is_active(job):
            raise RunError("No training of yours is running.")
        job.stop()
        return "Stopping after the current step; the adapter trained so far will be saved."

    tab.start.click(train, [state, ctx.token], [state, *view], inputs_kwargs=ctx.form.kwargs(), api_name="train",
                    show_progress_on=tab.progress)
    tab.stop.click(stop, state, tab.result, api_name="stop")
    poll_inputs = [state, tab.smoothing, tab.log_scale]
    tab.timer.tick(progress, poll_inputs, view, api_name="progress", show_progress="hidden",
                   concurrency_limit=None)
    gr.on([tab.smoothing.release, tab.log_scale.change], progress, poll_inputs, view,
          api_visibility="private", show_progress="hidden")


def reattach(ctx: Context, state: SessionState, smoothing: float, log_scale: bool) -> tuple:
    """On page load: show the visitor's job (and restart the timer if it is still running)."""
    return job_view(ctx.services.jobs.get(state.owner), smoothing, log_scale) if state.owner else \
        job_view(None, smoothing, log_scale)
