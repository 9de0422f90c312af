"""Pure plotting functions: data in, plotly figure out (no I/O, no gradio)."""
from __future__ import annotations

import functools
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from studio.compat import unvalidated_figure
from studio.evaluate.comparison import Comparison
from studio.evaluate.timeline import Timeline
from studio.publish.scorecard import headline_comparison

TEMPLATE = "plotly_white"
BASE_COLOR, TUNED_COLOR = "#94a3b8", "#4f46e5"
LOSS_COLOR, EVAL_COLOR, LR_COLOR = "#4f46e5", "#f59e0b", "#10b981"
UP_COLOR, DOWN_COLOR = "#16a34a", "#dc2626"
RUN_COLORS = ("#4f46e5", "#f97316", "#10b981", "#e11d48")  # run A, run B, ... in the overlaid loss chart
# The live loss chart's default: what TensorBoard and W&B draw, a debiased EMA line (TensorBoard's own default
# weight is 0.6) over the raw per-step points drawn faint. Per-step loss of a small batch jumps (one batch of 4
# can read 0.2 then 3.2); the smoothed line shows the trend an audience should read. 0 shows the raw line alone.
SMOOTHING = 0.6
RAW_OPACITY = 0.25  # the raw points under a smoothed line: visible, never the eye's first stop


def _layout(fig: go.Figure, title: str, **kwargs: Any) -> go.Figure:
    """The look every studio chart shares: white template, title left, legend on top."""
    fig.update_layout(
        template=TEMPLATE, title={"text": title, "x": 0.01}, margin={"l": 60, "r": 60, "t": 80, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0}, **kwargs,
    )
    return fig


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 16, "color": "#64748b"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _integer_ticks(fig: go.Figure, largest: int) -> None:
    # Steps and example numbers are whole; plotly would otherwise label a 2-step run 1, 1.2, 1.4, ...
    if largest <= 10:
        fig.update_xaxes(dtick=1)


def ema(values: list[float], smoothing: float) -> list[float]:
    """Exponential moving average, debiased like TensorBoard's so early points are not pulled to zero."""
    out, avg = [], 0.0
    for i, value in enumerate(values, start=1):
        avg = smoothing * avg + (1 - smoothing) * value
        out.append(avg / (1 - smoothing**i))
    return out


def _series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the records that logged `key` (eval records carry no train loss, and vice versa)."""
    points = [(int(r.get("step") or 0), float(r[key])) for r in history if r.get(key) is not None]
    return [s for s, _ in points], [v for _, v in points]


def _marker_mode(n: int) -> str:
    # Markers on short series so a run with one or two logged steps still shows its points.
    return "lines+markers" if n <= 60 else "lines"


@functools.lru_cache(maxsize=1)
def _template_spec() -> dict[str, Any]:
    """The resolved plotly template as plain data (plotly.js knows no template names, so figures carry it)."""
    return pio.templates[TEMPLATE].to_plotly_json()


def _scatter(x: list, y: list, name: str, mode: str, line: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "scatter", "x": x, "y": y, "name": name, "mode": mode, "line": line, **extra}


def loss_traces(history: list[dict], smoothing: float = SMOOTHING) -> list[dict[str, Any]]:
    """The loss chart's traces as plain data: train loss (faint raw + EMA), eval loss points, learning rate on y2."""
    steps, loss = _series(history, "loss")
    eval_steps, eval_loss = _series(history, "eval_loss")
    lr_steps, lr = _series(history, "learning_rate")
    smoothed = 0.0 < smoothing < 1.0 and len(loss) > 1
    traces = []
    if loss and smoothed:  # faint raw points under the smoothed line
        traces.append(_scatter(steps, loss, "train loss (raw)", _marker_mode(len(loss)),
                               {"color": LOSS_COLOR, "width": 1}, marker={"size": 5}, opacity=RAW_OPACITY))
    elif loss:
        traces.append(_scatter(steps, loss, "train loss", _marker_mode(len(loss)), {"color": LOSS_COLOR, "width": 2},
                               marker={"size": 6}, opacity=1.0))
    if loss and smoothed:
        traces.append(_scatter(steps, ema(loss, smoothing), "train loss (smoothed)", "lines",
                               {"color": LOSS_COLOR, "width": 2.5}))
    if eval_loss:
        traces.append(_scatter(eval_steps, eval_loss, "eval loss", "lines+markers",
                               {"color": EVAL_COLOR, "width": 2, "dash": "dot"}, marker={"size": 9}))
    if lr:
        traces.append(_scatter(lr_steps, lr, "learning rate", "lines",
                               {"color": LR_COLOR, "width": 1.5, "dash": "dash"}, yaxis="y2"))
    return traces


def loss_figure(history: list[dict], smoothing: float = SMOOTHING, log_scale: bool = False) -> go.Figure:
    """Train loss (by default a smoothed line over faint raw points), eval loss points, learning rate on a second y.

    `smoothing` is the EMA weight (`SMOOTHING` by default; 0 draws the raw line alone); eval loss is drawn as logged.

    Built as plain data and wrapped without plotly's per-property validation: the Train tab redraws it every
    second while a job trains in the same process, and validation costs many times the rest of a redraw (through
    `studio.compat.unvalidated_figure`, plotly's private `_validate=False`).
    """
    traces = loss_traces(history, smoothing)
    if not traces or all(t["name"] == "learning rate" for t in traces):
        fig = _layout(go.Figure(), "Training loss", xaxis_title="step", yaxis_title="loss", hovermode="x unified")
        return _empty(fig, "No loss logged yet")
    layout: dict[str, Any] = {
        "template": _template_spec(), "title": {"text": "Training loss", "x": 0.01},
        "margin": {"l": 60, "r": 60, "t": 80, "b": 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        "xaxis": {"title": {"text": "step"}}, "yaxis": {"title": {"text": "loss"}, "type": "log" if log_scale else "linear"},
        "hovermode": "x unified",
    }
    if any(t["name"] == "learning rate" for t in traces):
        layout["yaxis2"] = {"title": {"text": "learning rate"}, "overlaying": "y", "side": "right", "showgrid": False,
                            "exponentformat": "e", "rangemode": "tozero"}
    if max(max(t["x"]) for t in traces if t["name"] != "learning rate") <= 10:
        layout["xaxis"]["dtick"] = 1  # steps are whole: plotly would otherwise label a 2-step run 1, 1.2, 1.4, ...
    return unvalidated_figure({"data": traces, "layout": layout})


def scores_figure(comparison: Comparison) -> go.Figure:
    """Grouped bars, base vs tuned, for corpus BLEU, chrF, ROUGE-L (when measured) and exact match (%), over the rows
    the headline and the score cards score (held-out prompts that repeat a training prompt left out unless included)."""
    scored = headline_comparison(comparison)
    left_out = len(comparison.rows) - len(scored.rows)
    note = f"; {left_out} that repeat{'s' * (left_out == 1)} a training prompt left out" if left_out else ""
    comparison = scored
    rouge = comparison.base.rouge_l is not None and comparison.tuned.rouge_l is not None
    metrics = ["BLEU", "chrF", *(["ROUGE-L"] if rouge else []), "exact match (%)"]
    fig = go.Figure()
    for label, scores, color in (("base", comparison.base, BASE_COLOR), ("tuned", comparison.tuned, TUNED_COLOR)):
        values = [scores.bleu, scores.chrf, *([scores.rouge_l] if rouge else []), 100 * scores.exact_match]
        fig.add_trace(go.Bar(x=metrics, y=values, name=label, marker_color=color,
                             text=[f"{v:.1f}" for v in values], textposition="outside", cliponaxis=False))
    _layout(fig, f"Before vs after tuning ({comparison.tuned.n} held-out examples{note})", barmode="group",
            yaxis={"range": [0, 110], "title": "score (0-100)"})
    return fig


# ARCHITECTURE.md names the scores chart `bleu_figure`; both names work.
bleu_figure = scores_figure


def delta_figure(comparison: Comparison) -> go.Figure:
    """Per-example change in sentence BLEU, sorted, green where tuning helped and red where it hurt."""
    fig = go.Figure()
    _layout(fig, "BLEU change per example (tuned - base)", xaxis_title="examples, sorted by change",
            yaxis_title="BLEU change")
    if not comparison.rows:
        return _empty(fig, "No examples compared yet")
    rows = sorted(comparison.rows, key=lambda r: r.delta_bleu, reverse=True)
    deltas = [r.delta_bleu for r in rows]
    fig.add_trace(go.Bar(
        x=list(range(1, len(rows) + 1)), y=deltas, name="BLEU change",
        marker_color=[UP_COLOR if d > 0 else DOWN_COLOR if d < 0 else BASE_COLOR for d in deltas],
        customdata=[r.instruction[:80] for r in rows], hovertemplate="%{customdata}<br>%{y:+.1f} BLEU<extra></extra>",
    ))
    fig.add_hline(y=0, line_color="#334155", line_width=1)
    _integer_ticks(fig, len(rows))
    return fig


def length_histogram(lengths: list[int], max_length: int) -> go.Figure:
    """Histogram of example token lengths, a dashed line at max_length, and how many exceed it in the title."""
    over = sum(n > max_length for n in lengths)
    title = f"Token lengths: {over} of {len(lengths)} over max_length {max_length}" if over else \
        f"Token lengths: all {len(lengths)} fit in max_length {max_length}"
    fig = go.Figure()
    _layout(fig, title, xaxis_title="tokens per example", yaxis_title="examples", bargap=0.05)
    if not lengths:
        return _empty(fig, "No examples to measure")
    fig.add_trace(go.Histogram(x=lengths, name="examples", marker_color=TUNED_COLOR, nbinsx=40))
    if max_length <= 2 * max(lengths):
        fig.add_vline(x=max_length, line_dash="dash", line_color=DOWN_COLOR, line_width=2,
                      annotation_text=f"max_length {max_length}", annotation_position="top right")
    else:
        # A line far to the right would squash every bar into a sliver; say where it is instead.
        fig.add_annotation(text=f"max_length {max_length} is off the chart →", xref="paper", yref="paper",
                           x=1, y=1.02, showarrow=False, xanchor="right", font={"color": DOWN_COLOR})
    return fig


def timeline_figure(timeline: Timeline, history: list[dict] | None = None) -> go.Figure:
    """Held-out BLEU at each snapshot (step 0: the base model), validation BLEU when measured, and the training
    loss on a second axis, so when the model learned what is visible at a glance; the snapshot in use is marked."""
    fig = go.Figure()
    _layout(fig, "Held-out BLEU at each snapshot, beside the training loss", xaxis_title="step",
            yaxis={"title": "BLEU (0-100)", "rangemode": "tozero"}, hovermode="x unified")
    if not timeline.points:
        return _empty(fig, "No snapshot scored yet")
    steps = [p.step for p in timeline.points]
    fig.add_trace(go.Scatter(x=steps, y=[p.test.bleu for p in timeline.points], name="held-out BLEU (test)",
                             mode="lines+markers+text", line={"color": TUNED_COLOR, "width": 3}, marker={"size": 10},
                             text=[f"{p.test.bleu:.1f}" for p in timeline.points], textposition="top center"))
    checked = [p for p in timeline.points if p.validation is not None]
    if checked:
        fig.add_trace(go.Scatter(x=[p.step for p in checked], y=[p.validation.bleu for p in checked],
                                 name="validation BLEU", mode="lines+markers",
                                 line={"color": EVAL_COLOR, "width": 2, "dash": "dot"}, marker={"size": 8}))
    loss_steps, loss = _series(history or [], "loss")
    if loss:
        fig.add_trace(go.Scatter(x=loss_steps, y=loss, name="training loss", mode="lines", yaxis="y2",
                                 line={"color": BASE_COLOR, "width": 1.5}, opacity=0.7))
        fig.update_layout(yaxis2={"title": "training loss", "overlaying": "y", "side": "right", "showgrid": False,
                                  "rangemode": "tozero"})
    if timeline.chosen_step:
        fig.add_vline(x=timeline.chosen_step, line_dash="dash", line_color=UP_COLOR,
                      annotation_text=f"in use: step {timeline.chosen_step}", annotation_position="top left")
    _integer_ticks(fig, max(steps + loss_steps))
    return fig


def runs_loss_figure(curves: list[tuple[str, list[dict]]]) -> go.Figure:
    """Several runs' training loss (solid) and eval loss (dotted) overlaid, one colour per run."""
    fig = go.Figure()
    _layout(fig, "Training loss, runs overlaid", xaxis_title="step", yaxis_title="loss", hovermode="x unified")
    largest = 0
    for i, (label, history) in enumerate(curves):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        steps, loss = _series(history, "loss")
        eval_steps, eval_loss = _series(history, "eval_loss")
        if loss:
            fig.add_trace(go.Scatter(x=steps, y=loss, name=f"{label} train loss", mode=_marker_mode(len(loss)),
                                     line={"color": color, "width": 2}, marker={"size": 5}))
        if eval_loss:
            fig.add_trace(go.Scatter(x=eval_steps, y=eval_loss, name=f"{label} eval loss", mode="lines+markers",
                                     line={"color": color, "width": 2, "dash": "dot"}, marker={"size": 8}))
        largest = max([largest, *steps, *eval_steps])
    if not fig.data:
        return _empty(fig, "Neither run has logged a loss")
    _integer_ticks(fig, largest)
    return fig
