"""The forgetting probe shown to people: table rows, a summary line, an HTML section and a chart (pure functions).

The report, the model card and the Compare tab's "Did it forget anything?" panel all render from these, so the
three say the same thing in the same words.
"""
from __future__ import annotations

from html import escape

import plotly.graph_objects as go

from studio.evaluate.probe_record import CategoryScore, ProbeResult
from studio.publish.plots import BASE_COLOR, DOWN_COLOR, TEMPLATE, UP_COLOR

TITLE = "Did it forget anything?"
HEADER = ["Category", "Items", "Base", "Tuned", "Change", "95% interval"]


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def _pts(fraction: float) -> str:
    return f"{100 * fraction:+.1f} pts"


def interval_text(score: CategoryScore) -> str:
    """The change's interval in points, e.g. "-10.0 to -2.5"."""
    return f"{100 * score.low:+.1f} to {100 * score.high:+.1f}"


def probe_rows(result: ProbeResult) -> list[list[str]]:
    """One row per category and a last row for all items: category, items, base, tuned, change, interval."""
    return [[s.label, str(s.n), _pct(s.base), _pct(s.tuned), _pts(s.change), interval_text(s)]
            for s in [*result.categories, result.overall]]


def probe_method(result: ProbeResult) -> str:
    """What was measured and how the interval was computed, in one sentence."""
    n, seconds = result.overall.n, result.base_seconds + result.tuned_seconds
    return (f"{n} multiple-choice items scored by log-likelihood ({result.metric}) with lm-evaluation-harness, "
            f"base model (adapter disabled) vs tuned model, in {seconds:.0f} s; the change's interval is a "
            f"{result.interval}.")


def probe_summary(result: ProbeResult) -> str:
    """The verdict followed by the method."""
    return f"{result.sentence} {probe_method(result)}"


def probe_text(result: ProbeResult) -> list[str]:
    """The section as aligned plain-text lines for a terminal: title, table, verdict, how it was measured."""
    rows = [HEADER, *probe_rows(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    table = ["  " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
             for row in rows]
    return [f"{TITLE} (base = the same model with the adapter disabled)", *table, probe_summary(result)]


def _kind(score: CategoryScore) -> str:
    return "down" if score.lost else "up" if score.gained else "flat"


COLORS = {"down": ("#b91c1c", "#fee2e2"), "up": ("#15803d", "#dcfce7"), "flat": ("#475569", "#f1f5f9")}


def probe_html(result: ProbeResult, heading: bool = True) -> str:
    """An HTML section (inline styles, so it looks the same in the report and in the app); all text escaped."""
    head = "".join(f'<th style="text-align:{"left" if i == 0 else "right"}">{escape(h)}</th>'
                   for i, h in enumerate(HEADER))
    body = ""
    for score, row in zip([*result.categories, result.overall], probe_rows(result)):
        ink, fill = COLORS[_kind(score)]
        weight = "font-weight:700;" if score is result.overall else ""
        cells = [f'<td style="{weight}">{escape(row[0])}</td>']
        cells += [f'<td style="text-align:right;{weight}">{escape(v)}</td>' for v in row[1:4]]
        cells.append(f'<td style="text-align:right"><span style="background:{fill};color:{ink};padding:1px 8px;'
                     f'border-radius:999px;font-weight:600;white-space:nowrap">{escape(row[4])}</span></td>')
        cells.append(f'<td style="text-align:right;white-space:nowrap">{escape(row[5])}</td>')
        body += f"<tr>{''.join(cells)}</tr>"
    ink, fill = COLORS["down" if result.forgot else "flat"]
    verdict = (f'<p style="font-size:18px;font-weight:700;margin:0 0 8px;padding:8px 12px;border-radius:8px;'
               f'background:{fill};color:{ink}">{escape(result.sentence)}</p>')
    note = f'<p style="color:#64748b;font-size:13px;margin:8px 0 0">{escape(probe_method(result))}</p>'
    table = f'<table style="width:100%;border-collapse:collapse"><tr>{head}</tr>{body}</table>'
    title = f"<h2>{escape(TITLE)}</h2>" if heading else ""
    return f'<section class="probe">{title}{verdict}{table}{note}</section>'


def probe_markdown(result: ProbeResult, table: object) -> list[str]:
    """The section as Markdown lines; `table(header, rows)` is the caller's escaping table renderer."""
    return [f"## {TITLE}", "", probe_summary(result), "", *table(HEADER, probe_rows(result)), ""]


def probe_figure(result: ProbeResult) -> go.Figure:
    """Each category's change (points) with its 95% interval as error bars, around a zero line."""
    scores = [*result.categories, result.overall][::-1]  # plotly draws the first bar at the bottom
    color = {"down": DOWN_COLOR, "up": UP_COLOR, "flat": BASE_COLOR}
    fig = go.Figure(go.Scatter(
        x=[100 * s.change for s in scores], y=[s.label for s in scores], mode="markers",
        marker={"size": 12, "color": [color[_kind(s)] for s in scores]},
        error_x={"type": "data", "symmetric": False, "array": [100 * (s.high - s.change) for s in scores],
                 "arrayminus": [100 * (s.change - s.low) for s in scores], "thickness": 2, "width": 6},
        customdata=[[_pct(s.base), _pct(s.tuned), interval_text(s)] for s in scores],
        hovertemplate="%{y}: %{customdata[0]} → %{customdata[1]}<br>change %{x:+.1f} pts "
                      "(95%: %{customdata[2]})<extra></extra>",
    ))
    fig.add_vline(x=0, line={"color": "#64748b", "width": 1, "dash": "dot"})
    fig.update_layout(template=TEMPLATE, title={"text": "Change in accuracy, tuned − base (95% interval)", "x": 0.01},
                      margin={"l": 120, "r": 30, "t": 60, "b": 50}, height=120 + 42 * len(scores),
                      xaxis={"title": "points", "zeroline": False}, showlegend=False)
    return fig
