"""Demo tab: one click runs the whole before/after for an audience and lands on a single page made to be shown.

"▶ Run the before/after demo" (here and on the Data tab) loads the data if none is loaded (the chosen built-in
sample), trains with the current settings while the loss chart grows, compares base vs tuned, and shows the BLEU
cards with their interval, the three examples tuning helped most in large type, the loss chart, the report and an
"Ask both models" box. The demo is the visitor's job (a `TrainingJob` of kind "demo", `studio.demo.demo_args`, in
the one job registry): Stop works at every step, and a reload reattaches to it.

The timer's tick (`/demo_poll`) sends only what changed, as the Train tab's does (`ui.polling`): the process that
trains rebuilds the loss figure only when a point arrived, and checks the run folder only when the demo moved on,
not every second. `/demo_progress` still answers with the whole view, for API clients.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from studio.demo import demo_args
from studio.errors import RunError
from studio.evaluate.before_after import answer_both
from studio.evaluate.lengths import sized_to_references
from studio.jobqueue import queue_position
from studio.publish.plots import loss_figure
from studio.runs import RunFolder
from ui import data_steps
from ui.compare_view import score_cards_html
from ui.context import Context
from ui.demo_view import details, examples_html, status_html, steps_html
from ui.errors import guarded
from ui.model_tab import current_settings
from ui.notices import create_notice
from ui.polling import changed_view
from ui.services import is_active
from ui.state import SessionState, owner_of

TICK_SECONDS = 1.0
RUN_LABEL = "▶ Run the before/after demo"


@dataclass
class DemoTab:
    """The Demo tab's components that handlers read or write (and the Data tab's shortcut button)."""

    run: Any
    stop: Any
    note: Any
    steps: Any
    status: Any
    results: Any
    scores: Any
    examples: Any
    plot: Any
    report: Any
    ask_box: Any
    instruction: Any
    input: Any
    ask: Any
    base: Any
    tuned: Any
    details: Any
    timer: Any
    shortcut: Any = None
    shown: Any = None  # gr.State: each output's key as the page shows it, so a tick sends only what changed
    refresh: Any = None  # hidden: carries /demo_progress, the whole view for API clients


def create_demo_callout() -> Any:
    """The Data tab's shortcut: one button for the whole before/after, with a line saying what it does."""
    with gr.Row(elem_classes="demo-callout"):
        with gr.Column(scale=3, min_width=240):
            gr.Markdown("**New here?** One click loads the sample, trains, compares the model before and after "
                        "tuning, and shows the result on the ▶ Demo tab.")
        shortcut = gr.Button(RUN_LABEL, variant="primary", scale=2, min_width=220, elem_classes="demo-run")
    return shortcut


def create_demo_tab(ctx: Context) -> DemoTab:
    """Lay out the audience page: actions, step bar, live status, results, loss chart, report, ask box."""
    with gr.Row():
        run = gr.Button(RUN_LABEL, variant="primary", scale=3, elem_classes="demo-run")
        stop = gr.Button("■ Stop (keeps what is finished)", variant="stop", scale=1, min_width=160)
    create_notice(ctx, "demo")
    note = gr.Markdown(elem_classes="demo-note")
    steps = gr.HTML(steps_html())
    status = gr.HTML(status_html(None))
    with gr.Column(visible=False) as results:
        scores = gr.HTML()
        examples = gr.HTML()
    plot = gr.Plot(label="Training loss", elem_id="demo-loss-plot", visible=False)
    report = gr.File(label="The report for your stakeholders (HTML and Markdown)", file_count="multiple",
                     interactive=False, visible=False, elem_id="demo-report")
    with gr.Column(visible=False) as ask_box:
        gr.Markdown("### Ask both models")
        with gr.Row():
            instruction = gr.Textbox("", label="Instruction", lines=2, scale=3,
                                     placeholder="Sort the words alphabetically.")
            input_box = gr.Textbox("", label="Input (optional)", lines=2, scale=2, placeholder="pear apple fig")
        ask = gr.Button("Answer with both")
        with gr.Row():
            base = gr.Textbox(label="Before tuning (base model)", lines=4, interactive=False,
                              elem_classes="answer-box")
            tuned = gr.Textbox(label="After tuning", lines=4, interactive=False, elem_classes="answer-box")
    details_box = gr.JSON(visible=False)
    timer = gr.Timer(TICK_SECONDS, active=False)
    return DemoTab(run, stop, note, steps, status, results, scores, examples, plot, report, ask_box, instruction,
                   input_box, ask, base, tuned, details_box, timer, shown=gr.State({}),
                   refresh=gr.Button("Refresh", visible=False))


def _reports(run_dir: Path) -> list[str] | None:
    folder = RunFolder(run_dir)
    files = [str(p) for p in (folder.report_html, folder.report_md) if p.is_file()]
    return files or None


VIEW = ("details", "steps", "status", "results", "scores", "examples", "plot", "report", "ask_box", "timer")
_ENDING = ("results", "scores", "examples", "report", "ask_box")  # what changes only when a stage or status does


def view_keys(demo: Any) -> dict[str, Any]:
    """A cheap fingerprint of each output: the same key means the page already shows it."""
    if demo is None:
        return dict.fromkeys(VIEW)
    active = is_active(demo)
    position = queue_position(demo) if demo.status == "queued" else 0
    ending = (demo.run_id, active, demo.status, demo.stage, demo.comparison is not None)
    return {"details": details(demo), "steps": steps_html(demo.stage, demo.status),
            "status": status_html(demo, position), **dict.fromkeys(_ENDING, ending),
            "plot": (demo.run_id, len(demo.history())), "timer": active}


def _build(demo: Any, keys: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The outputs in `names` (the chart, the comparison and the report are only built here, when they changed)."""
    if demo is None:
        idle = {"details": {}, "steps": steps_html(), "status": status_html(None), "results": gr.Column(visible=False),
                "scores": "", "examples": "", "plot": gr.Plot(value=None, visible=False),
                "report": gr.File(value=None, visible=False), "ask_box": gr.Column(visible=False),
                "timer": gr.Timer(active=False)}
        return {name: idle[name] for name in names}
    out = {name: keys[name] for name in names if name in ("details", "steps", "status")}
    if "plot" in names:
        history = demo.history()
        out["plot"] = gr.update(value=loss_figure(history) if history else None, visible=True)
    if "timer" in names:
        out["timer"] = gr.Timer(active=keys["timer"])
    if set(_ENDING) & set(names):
        active = keys["timer"]
        cmp = demo.comparison  # the job holds it (a finished job of an earlier process is not in the registry)
        shown = cmp is not None
        reports = _reports(Path(demo.run_dir)) if shown else None
        has_adapter = not active and RunFolder(Path(demo.run_dir)).has_adapter()
        out.update({"results": gr.Column(visible=shown), "scores": score_cards_html(cmp) if shown else "",
                    "examples": examples_html(cmp) if shown else "",
                    "report": gr.File(value=reports, visible=bool(reports)), "ask_box": gr.Column(visible=has_adapter)})
    return {name: out[name] for name in names}


def visitor_demo(services: Any, owner: str) -> Any:
    """The visitor's job when it is the one-click demo, else None (the Demo tab shows no other job)."""
    job = services.jobs.get(owner) if owner else None
    return job if job is not None and job.kind == "demo" else None


def demo_view(demo: Any, shown: dict | None = None) -> tuple:
    """(details, steps, status, results, scores, examples, loss chart, report, ask box, timer, shown) for a demo.

    The details (a dict) come first: API clients read `result[0]`. Outputs whose key equals the one in `shown` (what
    the page shows) come back as `gr.skip()`; the last item is the new `shown`. Without `shown`, all are sent.
    """
    keys = view_keys(demo)
    return changed_view(VIEW, keys, shown, lambda names: _build(demo, keys, names))


def wire_demo_tab(ctx: Context, tab: DemoTab, blocks: gr.Blocks) -> None:
    """Connect run (both buttons), stop, the polling timer, the ask box and the reattach on page load."""
    state, services = ctx.state, ctx.services
    view = [*(getattr(tab, name) for name in VIEW), tab.shown]

    @guarded
    def run_demo(state: SessionState, sample: str, token: str, request: gr.Request, **values: Any) -> tuple:
        """Start the one-click demo on the loaded data (else the chosen built-in sample) and current settings."""
        owner = owner_of(state, request)
        services.jobs.check_free(owner)  # before loading anything
        if state.loaded is None:  # nothing loaded, or the last file failed: load the sample as Load data would,
            # which also sets the template widget to the template it returns
            values["data_template"] = data_steps.load_into_state(services, state, ctx.form.to_settings(values),
                                                                 data_steps.sample_spec(sample), token=token or None)
        settings = current_settings(ctx, state, values)
        demo = services.new_job(settings, owner=owner, token=token or None, **demo_args())
        services.jobs.add(owner, demo)  # the visitor's job: Train shows it, a second training waits for it
        demo.start()
        state.run_id = demo.run_id
        return state, "", *demo_view(demo), gr.Tabs(selected="demo")

    @guarded
    def progress(state: SessionState, request: gr.Request) -> tuple:
        """The visitor's demo as it stands: step bar, status, results, loss chart, report and details."""
        return demo_view(visitor_demo(services, owner_of(state, request)))

    @guarded
    def poll(state: SessionState, shown: dict, request: gr.Request) -> tuple:
        """What changed in the visitor's demo since the page's last update (unchanged outputs are skipped)."""
        return demo_view(visitor_demo(services, owner_of(state, request)), shown)

    @guarded
    def stop(state: SessionState, request: gr.Request) -> str:
        """Stop the visitor's demo wherever it is; what is finished is kept (the status says what)."""
        demo = visitor_demo(services, owner_of(state, request))
        if demo is None or not is_active(demo):
            raise RunError("No demo of yours is running.")
        demo.stop(owner=owner_of(state, request))
        return "Stopping: training keeps the adapter trained so far; a comparison ends after the current batch."

    @guarded
    def ask(state: SessionState, instruction: str = "", input: str = "", token: str | None = None,
            request: gr.Request = None, **values: Any) -> tuple:
        """One free instruction answered by the demo's model before tuning (adapter off) and after."""
        owner = owner_of(state, request)
        demo = visitor_demo(services, owner)
        if demo is None or is_active(demo) or not RunFolder(Path(demo.run_dir)).has_adapter():
            raise RunError("Run the demo first: the tuned model answers once training has finished.")
        rm = services.run_model(demo.run_id, demo, token or None)
        gen, _ = sized_to_references(ctx.form.to_settings(values).generation, rm.reference_lengths())
        return answer_both(rm.model, rm.tokenizer, rm.template, instruction, input, gen)

    def reattach(state: SessionState, browser_id: str) -> tuple:
        owner = state.owner or browser_id or ""
        return demo_view(visitor_demo(services, owner))

    starts = [state, ctx.data.sample, ctx.token]
    outputs = [state, tab.note, *view, ctx.tabs]
    form = ctx.form.kwargs()
    tab.run.click(run_demo, starts, outputs, inputs_kwargs=form, api_name="run_demo", show_progress_on=tab.status)
    tab.shortcut.click(run_demo, starts, outputs, inputs_kwargs=form, api_visibility="private",
                       show_progress_on=tab.shortcut)
    tab.stop.click(stop, state, tab.note, api_name="stop_demo")
    tab.timer.tick(poll, [state, tab.shown], view, api_name="demo_poll", show_progress="hidden",
                   concurrency_limit=None)
    # The whole view on request, for API clients (the page itself polls /demo_poll): a button no one sees.
    tab.refresh.click(progress, state, view, api_name="demo_progress", show_progress="hidden", concurrency_limit=None)
    tab.ask.click(ask, [state, tab.instruction, tab.input, ctx.token], [tab.base, tab.tuned],
                  inputs_kwargs=ctx.form.kwargs("generation"), api_visibility="private", concurrency_id="generate",
                  concurrency_limit=1)
    blocks.load(reattach, [state, ctx.browser_id], view, api_visibility="private", show_progress="hidden")
