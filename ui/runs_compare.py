"""Runs tab, "Compare two runs": loss curves overlaid, held-out scores side by side with the difference, and the
settings that differ (run A is the run picked above, run B the one picked here)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from studio.errors import RunError
from studio.evaluate.comparison import load_comparison
from studio.evaluate.run_pair import pair_runs
from studio.publish import run_diff
from studio.publish.plots import runs_loss_figure
from studio.runs import RunInfo, list_runs, read_run
from ui.context import Context
from ui.errors import guarded


@dataclass
class RunsCompare:
    """The "Compare two runs" components."""

    other: Any
    button: Any
    headline: Any
    plot: Any
    scores: Any
    settings: Any


def create_runs_compare() -> RunsCompare:
    """Lay out the section (inside the Runs tab)."""
    with gr.Accordion("Compare two runs", open=False, elem_id="runs-compare"):
        with gr.Row():
            other = gr.Dropdown([], label="Run B (run A is the run picked above)", scale=4, allow_custom_value=True)
            button = gr.Button("Compare the two runs", size="sm", scale=1)
        headline = gr.Markdown()
        plot = gr.Plot(label="Loss curves", elem_id="runs-loss-plot")
        scores = gr.Dataframe(headers=run_diff.SCORE_HEADER, label="Held-out scores (B - A: run B's tuned model "
                              "minus run A's)", interactive=False, wrap=True)
        settings = gr.Dataframe(headers=run_diff.SETTINGS_HEADER, label="Settings that differ", interactive=False,
                                wrap=True, max_height=360)
    return RunsCompare(other, button, headline, plot, scores, settings)


def _scores(a: RunInfo, b: RunInfo) -> tuple[list[str], pd.DataFrame]:
    """(headline lines, score table) from the two runs' saved comparisons, or why there are no scores."""
    compared = [load_comparison(info.path) for info in (a, b)]
    missing = [info.run_id for info, cmp in zip((a, b), compared) if cmp is None]
    if missing:
        which = " and ".join(missing)
        them = "each" if len(missing) > 1 else "it"
        return [f"No held-out scores for run {which} yet: open {them} in Compare and press **Compare on the test "
                "split** (the loss curves and the settings that differ are below)."], \
            pd.DataFrame(columns=run_diff.SCORE_HEADER)
    pair = pair_runs(*compared)
    lines = [f"**{run_diff.headline(pair, a.run_id, b.run_id)}**", pair.rows_note, *run_diff.partial_notes(*compared)]
    return lines, pd.DataFrame(run_diff.score_rows(pair), columns=run_diff.SCORE_HEADER)


def _curve(name: str, run: RunInfo, other: RunInfo) -> tuple[str, list[dict]]:
    """(label, history) of one run; a run that trains the other one more is drawn from where that one stopped."""
    history = run.folder.read_metrics()
    if run.parent_run != other.run_id or not run.parent_step:
        return f"{name} {run.run_id}", history
    shifted = [{**r, "step": int(r.get("step") or 0) + run.parent_step} for r in history]
    return f"{name} {run.run_id} (trains {other.run_id} more, from its step {run.parent_step})", shifted


def wire_runs_compare(ctx: Context, section: RunsCompare, run: Any) -> None:
    """Fill run B's choices when run A changes, and compare the pair on request."""
    root = ctx.services.runs_root

    @guarded
    def choices(run_a: str | None) -> Any:
        """Every run but run A."""
        ids = [r.run_id for r in list_runs(root) if r.run_id != run_a]
        return gr.update(choices=ids, value=ids[0] if ids else None)

    @guarded
    def compare_two(run_a: str | None, run_b: str | None) -> tuple:
        """Loss curves overlaid, scores side by side with the difference, and the settings that differ."""
        if not run_a or not run_b:
            raise RunError("Choose two runs: run A above, run B here.")
        if run_a == run_b:
            raise RunError("Choose two different runs.")
        a, b = read_run(root, run_a), read_run(root, run_b)
        lines, scores = _scores(a, b)
        figure = runs_loss_figure([_curve("A", a, b), _curve("B", b, a)])
        changed = run_diff.settings_diff(*(i.folder.read_json(i.folder.settings_file) for i in (a, b)))
        if not changed:
            lines.append("The two runs used the same settings.")
        return "\n\n".join(lines), figure, scores, pd.DataFrame(changed, columns=run_diff.SETTINGS_HEADER)

    run.change(choices, run, section.other, api_visibility="private")
    section.button.click(compare_two, [run, section.other],
                         [section.headline, section.plot, section.scores, section.settings], api_name="compare_runs")
