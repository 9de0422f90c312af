"""The Compare tab's "Did it forget anything?" panel: base vs tuned accuracy per category on multiple-choice items.

The handlers only turn widgets into a task list and call `studio.pipeline.probe_run`; the HTML and the chart come
from `studio.publish.probe_view`, the same renderers as the report. Stop reaches the running probe through a
per-visitor `ProbeControl` in `gr.State`, checked by the library between two batches.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.errors import RunError
from studio.evaluate.probe import INSTALL_HINT, PROBE_GROUP, check_tasks, lm_eval_installed, parse_tasks
from studio.evaluate.probe_record import ProbeStopped, load_probe
from studio.model.threads import on_own_thread
from studio.pipeline import probe_run
from studio.publish.probe_view import TITLE, probe_figure, probe_html
from studio.runs import read_run
from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState, owner_of

PROGRESS = gr.Progress()
# Offered in the dropdown; any other lm-eval task name can be typed. All but the first need the Hub.
TASK_CHOICES = [PROBE_GROUP, "arc_easy", "arc_challenge", "hellaswag", "piqa", "winogrande", "boolq"]
EXPLAIN = ("Short multiple-choice questions a base model already answers (arithmetic, word relations, everyday facts, "
           "grammar, reading a sentence), scored by log-likelihood with lm-evaluation-harness for the base model "
           "(adapter disabled) and the tuned model. The built-in probe runs offline; other lm-eval tasks need the Hub.")


class ProbeControl:
    """One visitor's probe: whether one is pending or running, and the Stop request the library polls."""

    def __init__(self) -> None:
        self.active = False
        self.stop = threading.Event()

    def __deepcopy__(self, memo: dict) -> ProbeControl:
        return ProbeControl()  # gr.State copies its default per session: every visitor gets a fresh control

    def begin(self) -> None:
        """A probe was asked for: forget any earlier Stop."""
        self.stop.clear()
        self.active = True

    def request_stop(self) -> bool:
        """Ask the pending or running probe to stop; False when there is none."""
        if self.active:
            self.stop.set()
        return self.active

    def end(self) -> None:
        """The probe finished, failed or stopped."""
        self.active = False
        self.stop.clear()


@dataclass
class ProbePanel:
    """The panel's components."""

    control: Any
    tasks: Any
    run: Any
    stop: Any
    result: Any
    plot: Any


def create_probe_panel(ctx: Context) -> ProbePanel:
    """Lay out the panel (inside the Compare tab)."""
    gr.Markdown(f"### {TITLE}")
    gr.Markdown(EXPLAIN if lm_eval_installed() else f"{EXPLAIN}\n\n**{INSTALL_HINT}**")
    with gr.Row(equal_height=True):
        tasks = gr.Dropdown(TASK_CHOICES, value=[PROBE_GROUP], multiselect=True, allow_custom_value=True, scale=4,
                            label="Tasks", info="studio_probe is the built-in offline probe; or type an lm-eval task")
        run = gr.Button("Run the probe", variant="primary", scale=1)
        stop = gr.Button("Stop", variant="stop", scale=1)
    result = gr.HTML(label="Probe result")
    plot = gr.Plot(label="Change per category", visible=False)
    return ProbePanel(gr.State(ProbeControl()), tasks, run, stop, result, plot)


def probe_view(result: Any) -> tuple:
    """(html, plot update) for a ProbeResult."""
    return probe_html(result, heading=False), gr.update(value=probe_figure(result), visible=True)


def wire_probe_panel(ctx: Context, compare: Any, panel: ProbePanel) -> None:
    """Connect Run (with progress), Stop, and the saved result of the run chosen in Compare."""
    services = ctx.services

    @guarded
    def begin(control: ProbeControl) -> None:
        """Mark the probe pending before it queues, so a Stop pressed while it waits still counts."""
        control.begin()

    @guarded
    def run(state: SessionState, control: ProbeControl, run_id: str | None = None, tasks: Any = None,
            token: str | None = None, request: gr.Request = None, progress: gr.Progress = PROGRESS) -> tuple:
        """Score the run's base and tuned model on the tasks; the per-category table, sentence and chart."""
        if not control.active:  # an API client calls /probe without the button's `begin` step
            control.begin()
        try:
            run_id = run_id or state.run_id
            if not run_id:
                raise RunError("Choose a run with a trained adapter first (train one on the Train tab).")
            names = parse_tasks(tasks)
            check_tasks(names)  # lm-eval missing or the Hub unreachable: one sentence before any model loads
            progress(0, desc="Loading the model and the probe tasks")
            rm = services.run_model(run_id, services.jobs.get(owner_of(state, request)), token or None)

            def step(which: str, done: int, total: int) -> None:
                progress((done, total), desc=f"{which.capitalize()} model scoring choices", unit="rows")

            return probe_view(on_own_thread(probe_run, rm, names, progress=step, should_stop=control.stop.is_set))
        except ProbeStopped as stopped:
            return f"<p>{stopped}</p>", gr.update()
        finally:
            control.end()

    @guarded
    def stop(control: ProbeControl) -> None:
        """Stop the visitor's probe after the current batch (nothing is saved)."""
        if not control.request_stop():
            gr.Info("No probe is running.")

    @guarded
    def saved(run_id: str | None = None) -> tuple:
        """The run's saved probe result, if it has one."""
        result = load_probe(read_run(services.runs_root, run_id).path) if run_id else None
        return probe_view(result) if result else ("", gr.update(value=None, visible=False))

    view = [panel.result, panel.plot]
    panel.run.click(begin, panel.control, None, queue=False, api_visibility="private").then(
        run, [ctx.state, panel.control, compare.run, panel.tasks, ctx.token], view, api_name="probe",
        concurrency_id="generate", concurrency_limit=1, show_progress_on=panel.result)
    panel.stop.click(stop, panel.control, None, api_name="stop_probe", queue=False)
    compare.run.change(saved, compare.run, view, api_name="saved_probe")
