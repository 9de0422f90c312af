"""Pure plotting functions: data in, plotly figure out (no I/O, no gradio)."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from studio.evaluate.comparison import Comparison

TEMPLATE = "plotly_white"
BASE_COLOR, TUNED_COLOR = "#94a3b8", "#4f46e5"
LOSS_COLOR, EVAL_COLOR, LR_COLOR = "#4f46e5", "#f59e0b", "#10b981"
UP_COLOR, DOWN_COLOR = "#16a34a", "#dc2626"


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


def loss_figure(history: list[dict], smoothing: float = 0.0, log_scale: bool = False) -> go.Figure:
    """Train loss (raw + EMA when smoothing > 0), eval loss points, and learning rate on a second y axis."""
    fig = go.Figure()
    steps, loss = _series(history, "loss")
    eval_steps, eval_loss = _series(history, "eval_loss")
    lr_steps, lr = _series(history, "learning_rate")
    _layout(fig, "Training loss", xaxis_title="step", yaxis_title="loss", hovermode="x unified")
    if not steps and not eval_steps:
        return _empty(fig, "No loss logged yet")
    smoothed = 0.0 < smoothing < 1.0 and len(loss) > 1
    if loss:
        fig.add_trace(go.Scatter(
            x=steps, y=loss, name="train loss (raw)" if smoothed else "train loss", mode=_marker_mode(len(loss)),
            line={"color": LOSS_COLOR, "width": 1 if smoothed else 2}, marker={"size": 6},
            opacity=0.3 if smoothed else 1.0,
        ))
    if loss and smoothed:
        fig.add_trace(go.Scatter(x=steps, y=ema(loss, smoothing), name="train loss (smoothed)", mode="lines",
                                 line={"color": LOSS_COLOR, "width": 2.5}))
    if eval_loss:
        fig.add_trace(go.Scatter(x=eval_steps, y=eval_loss, name="eval loss", mode="lines+markers",
                                 line={"color": EVAL_COLOR, "width": 2, "dash": "dot"}, marker={"size": 9}))
    if lr:
        fig.add_trace(go.Scatter(x=lr_steps, y=lr, name="learning rate", mode="lines", yaxis="y2",
                                 line={"color": LR_COLOR, "width": 1.5, "dash": "dash"}))
        fig.update_layout(yaxis2={"title": "learning rate", "overlaying": "y", "side": "right",
                                  "showgrid": False, "exponentformat": "e", "rangemode": "tozero"})
    fig.update_layout(yaxis_type="log" if log_scale else "linear")
    _integer_ticks(fig, max(steps + eval_steps))
    return fig


def scores_figure(comparison: Comparison) -> go.Figure:
    """Grouped bars, base vs tuned, for corpus BLEU, chrF, ROUGE-L (when measured) and exact match (%)."""
    rouge = comparison.base.rouge_l is not None and comparison.tuned.rouge_l is not None
    metrics = ["BLEU", "chrF", *(["ROUGE-L"] if rouge else []), "exact match (%)"]
    fig = go.Figure()
    for label, scores, color in (("base", comparison.base, BASE_COLOR), ("tuned", comparison.tuned, TUNED_COLOR)):
        values = [scores.bleu, scores.chrf, *([scores.rouge_l] if rouge else []), 100 * scores.exact_match]
        fig.add_trace(go.Bar(x=metrics, y=values, name=label, marker_color=color,
                             text=[f"{v:.1f}" for v in values], textposition="outside", cliponaxis=False))
    _layout(fig, f"Before vs after tuning ({comparison.tuned.n} held-out examples)", barmode="group",
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
