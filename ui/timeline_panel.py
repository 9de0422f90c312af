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


def timeline_view(run_dir: Path, timeline: Timeline | None, index: int | None = None) -> tuple:
    """(plot, slider update, answers html, note) for a run's timeline, or the empty view when it has none."""
    if timeline is None:
        return None, gr.update(visible=False, value=0), "", _empty_note(run_dir)
    last = len(timeline.points) - 1
    index = last if index is None else max(0, min(index, last))
    slider = gr.update(minimum=0, maximum=max(last, 1), value=index, visible=last > 0)
    figure = timeline_figure(timeline, RunFolder(run_dir).read_metrics())
    return figure, slider, point_html(timeline, index), timeline_note(timeline)


def wire_timeline_panel(ctx: Context, panel: TimelinePanel, run: Any) -> None:
    """Connect scoring (with progress and Stop), the slider, choosing and restoring; `run` is Compare's picker."""
    services, root, state = ctx.services, ctx.services.runs_root, ctx.state

    def run_dir(run_id: str | None) -> Path:
        if not run_id:
            raise RunError("Choose a run with a trained adapter first (train one on the Train tab).")
        return read_run(root, run_id).path

    @guarded
    def saved(run_id: str | None = None) -> tuple:
        """The run's saved timeline, if its snapshots were scored."""
        if not run_id:
            return None, gr.update(visible=False, value=0), "", ""
        path = run_dir(run_id)
        return timeline_view(path, load_timeline(path))

    @guarded
    def score(state: SessionState, run_id: str | None = None, token: str | None = None, request: gr.Request = None,
              progress: gr.Progress = PROGRESS, **values: Any) -> tuple:
        """Answer the held-out rows with the base model and every snapshot; BLEU by step and the answers."""
        run_dir(run_id)
        rm = services.run_model(run_id, services.jobs.get(owner_of(state, request)), token or None)
        gen = ctx.form.to_settings(values).generation
        stop = services.stops.start(owner_of(state, request), "snapshots")

        def step(done: int, total: int, at: int) -> None:
            what = "the base model" if at == 0 else f"the step-{at} snapshot"
            progress((done, total), desc=f"Scoring {what}", unit="points")

        try:
            timeline = score_snapshots_run(rm, gen, progress=step, should_stop=stop.is_set)
        except NothingScored as exc:
            gr.Info(str(exc))
            return tuple(gr.update() for _ in range(4))
        return timeline_view(rm.run_dir, timeline)

    @guarded
    def show_point(run_id: str | None, index: float) -> str:
        """The answers at one point of the saved timeline."""
        timeline = load_timeline(run_dir(run_id))
        return point_html(timeline, int(index)) if timeline else ""

    @guarded
    def choose(state: SessionState, run_id: str | None, criterion: str, request: gr.Request) -> tuple:
        """Make the best snapshot by a validation criterion the run's adapter (the final adapter is kept)."""
        path = run_dir(run_id)
        point = choose_snapshot(root, run_id, owner_of(state, request), criterion)
        services.forget_run(run_id)  # the cached model carries the old adapter
        gr.Info(f"The run now uses its step-{point.step} snapshot as its adapter; compare again to score it.")
        timeline = load_timeline(path)
        return timeline_view(path, timeline, timeline.points.index(next(p for p in timeline.points
                                                                         if p.step == point.step)))

    @guarded
    def restore(state: SessionState, run_id: str | None, request: gr.Request) -> tuple:
        """Make the run's final adapter its adapter again."""
        path = run_dir(run_id)
        restore_final(root, run_id, owner_of(state, request))
        services.forget_run(run_id)
        gr.Info("The run uses its final adapter again.")
        return timeline_view(path, load_timeline(path))

    view = [panel.plot, panel.slider, panel.answers, panel.note]
    run.change(saved, run, view, api_name="timeline")
    panel.score.click(score, [state, run, ctx.token], view, inputs_kwargs=ctx.form.kwargs("generation"),
                      api_name="score_snapshots", concurrency_id="generate", concurrency_limit=1,
                      show_progress_on=panel.plot)
    wire_stop(ctx, panel.stop, "snapshots", "the snapshot scoring after the current batch", "stop_snapshots")
    # Dragging (input) and keys: only the latest position is rendered when several come quickly.
    gr.on([panel.slider.input, panel.slider.release], show_point, [run, panel.slider], panel.answers,
          api_name="snapshot_answers", show_progress="hidden", trigger_mode="always_last")
    panel.choose.click(choose, [state, run, panel.criterion], view, api_name="choose_snapshot")
    panel.restore.click(restore, [state, run], view, api_name="restore_final_adapter")
