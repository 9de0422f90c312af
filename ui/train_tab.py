"""Train tab: start/stop one LoRA run, watch loss, progress and log live, download the adapter at the end.

A `gr.Timer` ticks only while the visitor's job is active. Jobs are filed by the visitor's stable browser id, so a
reload or a second tab reattaches to the same job instead of losing it.

Why the tick sends only what changed: it runs in the process that trains, on the same cores. Each tick compares
what the page already shows (a per-session `gr.State`) with the job now and returns `gr.skip()` for every output
that is unchanged; the loss chart is rebuilt only when a point arrived (or smoothing / log scale changed), so the
server builds and the browser redraws it at most once per logged step. `/poll` (the timer) answers with the changes;
`/progress` (also what the smoothing and log-scale widgets call) always answers with the whole view.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from studio.errors import DataError, RunError
from studio.publish import export
from studio.publish.plots import SMOOTHING, loss_figure
from studio.runs import RunFolder
from studio.train.launch import check_machine
from ui.context import Context
from ui.errors import guarded
from ui.model_tab import current_settings
from ui.polling import changed_view
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
    shown: Any  # gr.State: what the page shows now, so a tick sends only what changed


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
            # Smoothed over faint raw points by default, as TensorBoard and W&B draw it: a small batch's raw loss
            # jumps from step to step, and the trend is what an audience should read.
            smoothing = gr.Slider(0.0, 0.95, value=SMOOTHING, step=0.05, label="Smoothing",
                                  info="Exponential moving average of the loss curve, drawn over the faint raw "
                                       "points (0: the raw line alone).", elem_classes="studio-settings")
            log_scale = gr.Checkbox(False, label="Log scale", info="Show the loss on a logarithmic axis.",
                                    elem_classes="studio-settings")
            log = gr.Textbox(label="Log", lines=12, max_lines=12, autoscroll=True, interactive=False)
    result = gr.Markdown()
    download = gr.DownloadButton("Download the adapter (.zip)", visible=False)
    with gr.Accordion("Status details (JSON)", open=False, elem_classes="studio-settings"):
        status = gr.JSON()
    timer = gr.Timer(TICK_SECONDS, active=False)
    shown = gr.State({})
    return TrainTab(start, stop, progress, plot, smoothing, log_scale, log, result, download, status, timer, shown)


def adapter_zip(run_dir: Path) -> str | None:
    """The run's adapter zip (adapter, tokenizer, model card, reproduce bundle), or None when it has no adapter.

    The same file the Runs tab hands out (`export.zip_adapter`).
    """
    if not RunFolder(run_dir).has_adapter():
        return None
    return str(export.zip_adapter(run_dir))


VIEW = ("progress", "plot", "log", "result", "download", "status", "timer")


def _finished_view(job: Any) -> tuple[str, Any]:
    """(result markdown, download update) of a job that is no longer active."""
    result = f"**{job.status.capitalize()}.** {job.message or job.error or ''}"
    path = adapter_zip(Path(job.run_dir)) if job.run_dir else None
    return result, gr.update(value=path, visible=bool(path))


def view_keys(job: Any, smoothing: float, log_scale: bool) -> dict[str, Any]:
    """A cheap fingerprint of each output: the same key means the page already shows it."""
    from studio.jobqueue import queue_position

    if job is None:
        return dict.fromkeys(VIEW)
    status, progress, history = job.status, job.progress(), job.history()
    position = queue_position(job) if status == "queued" else None
    active = is_active(job)
    return {
        "progress": progress_html(status, progress, position),
        "plot": (job.run_id, len(history), smoothing, log_scale),
        "log": "\n".join(job.logs()[-LOG_LINES:]),
        "result": (job.run_id, active, status),
        "download": (job.run_id, active, status),
        "status": {"run_id": job.run_id, "status": status, "queue_position": position, **progress},
        "timer": active,
    }


def _build(job: Any, keys: dict[str, Any], names: list[str], smoothing: float, log_scale: bool) -> dict[str, Any]:
    """The outputs in `names` (the chart and the adapter zip are only built here, when they changed)."""
    if job is None:
        idle = {"progress": progress_html("idle"), "plot": None, "log": "", "result": "",
                "download": gr.update(visible=False), "status": {}, "timer": gr.Timer(active=False)}
        return {name: idle[name] for name in names}
    # Progress html, log text and status details are their own keys.
    out = {name: keys[name] for name in names if name in ("progress", "log", "status")}
    if "plot" in names:
        history = job.history()
        out["plot"] = loss_figure(history, smoothing, log_scale) if history else None
    if "timer" in names:
        out["timer"] = gr.Timer(active=keys["timer"])
    if {"result", "download"} & set(names):
        # The end of a job is told once: what it saved, and the zip to download (built once for both outputs).
        result, download = ("", gr.update(visible=False)) if keys["timer"] else _finished_view(job)
        out.update({k: v for k, v in (("result", result), ("download", download)) if k in names})
    return out


def job_view(job: Any, smoothing: float, log_scale: bool, shown: dict | None = None) -> tuple:
    """(progress html, loss figure, log text, result markdown, download update, status dict, timer update, shown).

    Outputs whose key equals the one in `shown` (what the page shows) come back as `gr.skip()`; the last item is
    the new `shown`. Without `shown`, every output is sent.
    """
    keys = view_keys(job, smoothing, log_scale)
    return changed_view(VIEW, keys, shown, lambda names: _build(job, keys, names, smoothing, log_scale))


def wire_train_tab(ctx: Context, tab: TrainTab) -> None:
    """Connect start, stop and the timer that polls the visitor's job."""
    state, services = ctx.state, ctx.services
    view = [tab.progress, tab.plot, tab.log, tab.result, tab.download, tab.status, tab.timer, tab.shown]

    @guarded
    def train(state: SessionState, token: str, request: gr.Request, **values: Any) -> tuple:
        """Start LoRA training with every current setting on the loaded data; returns the first progress view."""
        if state.loaded is None:  # a file that failed to load leaves its spec behind, for mapping or keeping
            raise DataError("Load a dataset on the Data tab before starting training.")
        owner = owner_of(state, request)
        settings = current_settings(ctx, state, values)
        check_machine(settings.train)  # more processes than this machine has: one sentence, no run started
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
    def poll(state: SessionState, shown: dict, smoothing: float, log_scale: bool, request: gr.Request) -> tuple:
        """What changed in the visitor's job since the page's last update (unchanged outputs are skipped)."""
        job = services.jobs.get(owner_of(state, request))
        return job_view(job, smoothing, log_scale, shown)

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
    tab.timer.tick(poll, [state, tab.shown, tab.smoothing, tab.log_scale], view, api_name="poll",
                   show_progress="hidden", concurrency_limit=None)
    gr.on([tab.smoothing.release, tab.log_scale.change], progress, [state, tab.smoothing, tab.log_scale], view,
          api_name="progress", show_progress="hidden", concurrency_limit=None)


def reattach(ctx: Context, state: SessionState, smoothing: float, log_scale: bool) -> tuple:
    """On page load: show the visitor's job (and restart the timer if it is still running)."""
    return job_view(ctx.services.jobs.get(state.owner), smoothing, log_scale) if state.owner else \
        job_view(None, smoothing, log_scale)
