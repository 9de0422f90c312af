"""Compare tab, "Watch it learn": score every snapshot of the run, plot held-out BLEU against step beside the
loss, step through the answers with a slider, and choose the best snapshot by validation score as the adapter."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from studio.errors import RunError
from studio.evaluate.snapshot_scores import NothingScored
from studio.evaluate.timeline import CRITERIA, Timeline, load_timeline
from studio.model.threads import on_own_thread
from studio.pipeline import choose_snapshot, restore_final, score_snapshots_run
from studio.publish.plots import timeline_figure
from studio.runs import RunFolder, read_run
from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState, owner_of
from ui.stops import wire_stop
from ui.timeline_view import EXPLAIN, point_html, timeline_note

PROGRESS = gr.Progress()


@dataclass
class TimelinePanel:
    """The "Watch it learn" components that handlers read or write."""

    score: Any
    stop: Any
    plot: Any
    slider: Any
    answers: Any
    criterion: Any
    choose: Any
    restore: Any
    note: Any


def create_timeline_panel(ctx: Context) -> TimelinePanel:
    """Lay out the panel (inside the Compare tab)."""
    with gr.Accordion("Watch it learn: every snapshot scored, step by step", open=False, elem_id="timeline"):
        gr.Markdown(EXPLAIN)
        with gr.Row():
            score = gr.Button("Score every snapshot", variant="primary", scale=4)
            stop = gr.Button("Stop (keeps the snapshots scored)", variant="stop", scale=1)
        plot = gr.Plot(label="Held-out BLEU by step", elem_id="timeline-plot")
        slider = gr.Slider(0, 1, value=0, step=1, label="Snapshot (0 is the base model)", visible=False,
                           info="Drag to see the answers at each step.")
        answers = gr.HTML(elem_id="timeline-answers")
        with gr.Row():
            criterion = gr.Radio([(label, key) for key, label in CRITERIA.items()], value="validation_bleu",
                                 label="Choose by", scale=2, info="Validation rows only: the test rows shown above "
                                 "would flatter the choice.")
            choose = gr.Button("Use the best snapshot as the run's adapter", size="sm", scale=2)
            restore = gr.Button("Restore the final adapter", size="sm", scale=1)
        note = gr.Markdown()
    return TimelinePanel(score, stop, plot, slider, answers, criterion, choose, restore, note)


def _empty_note(run_dir: Path) -> str:
    steps = RunFolder(run_dir).snapshot_steps()
    if not steps:
        return ("This run has no snapshots (trained with train.snapshots 0, or before snapshots existed), so there "
                "is no timeline to score.")
    return (f"This run has {len(steps)} snapshots (steps {', '.join(map(str, steps))}); press **Score every "
            "snapshot** to answer the held-out rows with each.")


class TimelineHandlers:
    """The panel's handlers: score, step through and choose snapshots via `studio.pipeline`, as {component: value}."""

    def __init__(self, ctx: Context, panel: TimelinePanel) -> None:
        self.ctx, self.panel, self.services, self.root = ctx, panel, ctx.services, ctx.services.runs_root

    def view(self, run_dir: Path, timeline: Timeline | None, index: int | None = None) -> dict:
        """Plot, slider, answers and note for a run's timeline (at point `index`, else the last), or the empty
        view when it has none."""
        panel = self.panel
        if timeline is None:
            return {panel.plot: None, panel.slider: gr.update(visible=False, value=0), panel.answers: "",
                    panel.note: _empty_note(run_dir)}
        last = len(timeline.points) - 1
        index = last if index is None else max(0, min(index, last))
        return {panel.plot: timeline_figure(timeline, RunFolder(run_dir).read_metrics()),
                panel.slider: gr.update(minimum=0, maximum=max(last, 1), value=index, visible=last > 0),
                panel.answers: point_html(timeline, index), panel.note: timeline_note(timeline)}

    def run_dir(self, run_id: str | None) -> Path:
        """The chosen run's folder (a sentence when none is chosen)."""
        if not run_id:
            raise RunError("Choose a run with a trained adapter first (train one on the Train tab).")
        return read_run(self.root, run_id).path

    @guarded
    def saved(self, run_id: str | None = None) -> dict:
        """The run's saved timeline, if its snapshots were scored."""
        if not run_id:
            panel = self.panel
            return {panel.plot: None, panel.slider: gr.update(visible=False, value=0), panel.answers: "",
                    panel.note: ""}
        path = self.run_dir(run_id)
        return self.view(path, load_timeline(path))

    @guarded
    def score(self, state: SessionState, run_id: str | None = None, token: str | None = None,
              request: gr.Request = None, progress: gr.Progress = PROGRESS, **values: Any) -> Any:
        """Answer the held-out rows with the base model and every snapshot; BLEU by step and the answers."""
        self.run_dir(run_id)
        owner = owner_of(state, request)
        rm = self.services.run_model(run_id, self.services.jobs.get(owner), token or None)
        gen = self.ctx.form.to_settings(values).generation
        stop = self.services.stops.start(owner, "snapshots")

        def step(done: int, total: int, at: int) -> None:
            what = "the base model" if at == 0 else f"the step-{at} snapshot"
            progress((done, total), desc=f"Scoring {what}", unit="points")

        try:
            timeline = on_own_thread(score_snapshots_run, rm, gen, progress=step, should_stop=stop.is_set)
        except NothingScored as exc:
            gr.Info(str(exc))
            return gr.skip()  # the panel keeps what it showed
        return self.view(rm.run_dir, timeline)

    @guarded
    def show_point(self, run_id: str | None, index: float) -> str:
        """The answers at one point of the saved timeline."""
        timeline = load_timeline(self.run_dir(run_id))
        return point_html(timeline, int(index)) if timeline else ""

    @guarded
    def choose(self, state: SessionState, run_id: str | None, criterion: str, request: gr.Request) -> dict:
        """Make the best snapshot by a validation criterion the run's adapter (the final adapter is kept)."""
        path = self.run_dir(run_id)
        point = choose_snapshot(self.root, run_id, owner_of(state, request), criterion)
        self.services.forget_run(run_id)  # the cached model carries the old adapter
        gr.Info(f"The run now uses its step-{point.step} snapshot as its adapter; compare again to score it.")
        timeline = load_timeline(path)
        return self.view(path, timeline, [p.step for p in timeline.points].index(point.step))

    @guarded
    def restore(self, state: SessionState, run_id: str | None, request: gr.Request) -> dict:
        """Make the run's final adapter its adapter again."""
        path = self.run_dir(run_id)
        restore_final(self.root, run_id, owner_of(state, request))
        self.services.forget_run(run_id)
        gr.Info("The run uses its final adapter again.")
        return self.view(path, load_timeline(path))


def wire_timeline_panel(ctx: Context, panel: TimelinePanel, run: Any) -> None:
    """Connect scoring (with progress and Stop), the slider, choosing and restoring; `run` is Compare's picker."""
    state, on = ctx.state, TimelineHandlers(ctx, panel)
    view = [panel.plot, panel.slider, panel.answers, panel.note]
    run.change(on.saved, run, view, api_name="timeline")
    panel.score.click(on.score, [state, run, ctx.token], view, inputs_kwargs=ctx.form.kwargs("generation"),
                      api_name="score_snapshots", concurrency_id="generate", concurrency_limit=1,
                      show_progress_on=panel.plot)
    wire_stop(ctx, panel.stop, "snapshots", "the snapshot scoring after the current batch", "stop_snapshots")
    # Dragging (input) and keys: only the latest position is rendered when several come quickly.
    gr.on([panel.slider.input, panel.slider.release], on.show_point, [run, panel.slider], panel.answers,
          api_name="snapshot_answers", show_progress="hidden", trigger_mode="always_last")
    panel.choose.click(on.choose, [state, run, panel.criterion], view, api_name="choose_snapshot")
    panel.restore.click(on.restore, [state, run], view, api_name="restore_final_adapter")
