"""A small line chart drawn as inline SVG, so the report needs no JavaScript or network to show the loss."""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

Point = tuple[float, float]


@dataclass
class Series:
    """One line (or set of dots) on the chart."""

    name: str
    points: list[Point]
    color: str
    dashed: bool = False
    dots_only: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.1e}"


@dataclass
class _Frame:
    """Maps data coordinates into the plotting area of the SVG."""

    x_ticks: list[float]
    y_ticks: list[float]
    left: float
    top: float
    width: float
    height: float

    def x(self, value: float) -> float:
        lo, hi = self.x_ticks[0], self.x_ticks[-1]
        return self.left + (value - lo) / (hi - lo) * self.width

    def y(self, value: float) -> float:
        lo, hi = self.y_ticks[0], self.y_ticks[-1]
        return self.top + self.height - (value - lo) / (hi - lo) * self.height


def _axes(frame: _Frame, x_label: str, y_label: str) -> list[str]:
    bottom, right = frame.top + frame.height, frame.left + frame.width
    parts = []
    for t in frame.y_ticks:
        y = frame.y(t)
        parts.append(f'<line class="grid" x1="{frame.left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{frame.left - 8:.1f}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{_label(t)}</text>')
    for t in frame.x_ticks:
        x = frame.x(t)
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 5:.1f}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 20:.1f}" text-anchor="middle">{_label(t)}</text>')
    parts.append(f'<line class="axis" x1="{frame.left:.1f}" y1="{bottom:.1f}" x2="{right:.1f}" y2="{bottom:.1f}"/>')
    parts.append(f'<text class="axis-label" x="{frame.left + frame.width / 2:.1f}" y="{bottom + 40:.1f}" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    mid = frame.top + frame.height / 2
    parts.append(f'<text class="axis-label" x="16" y="{mid:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 16 {mid:.1f})">{escape(y_label)}</text>')
    return parts


def _series_marks(frame: _Frame, series: Series) -> list[str]:
    coords = [(frame.x(x), frame.y(y)) for x, y in series.points]
    parts = []
    if len(coords) > 1 and not series.dots_only:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        dash = ' stroke-dasharray="6 4"' if series.dashed else ""
        parts.append(f'<polyline fill="none" stroke="{series.color}" stroke-width="2.5" stroke-linejoin="round" '
                     f'points="{path}"{dash}/>')
    # Dots on short or dots-only series, so a run with a single logged step still shows it.
    if series.dots_only or len(coords) <= 40:
        radius = 4.5 if series.dots_only else 3
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{series.color}"/>' for x, y in coords]
    return parts


def _legend(series: list[Series], left: float) -> list[str]:
    parts, x = [], left
    for s in series:
        parts.append(f'<rect x="{x:.1f}" y="8" width="14" height="4" rx="2" fill="{s.color}"/>')
        parts.append(f'<text class="legend" x="{x + 20:.1f}" y="14">{escape(s.name)}</text>')
        x += 34 + 7.5 * len(s.name)
    return parts


def line_chart(series: list[Series], x_label: str, y_label: str, width: int = 760, height: int = 280,
               empty: str = "No data yet") -> str:
    """An SVG line chart with axes, ticks, grid and a legend; with no points it shows the `empty` message."""
    shown = [s for s in series if s.points]
    if not shown:
        return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="no data">'
                f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">{escape(empty)}</text>'
                "</svg>")
    xs = [x for s in shown for x, _ in s.points]
    ys = [y for s in shown for _, y in s.points]
    y_ticks = nice_ticks(min(0.0, min(ys)), max(ys))
    x_ticks = nice_ticks(min(0.0, min(xs)), max(xs), count=6)
    frame = _Frame(x_ticks, y_ticks, left=64, top=30, width=width - 84, height=height - 84)
    body = _axes(frame, x_label, y_label) + _legend(shown, frame.left)
    for s in shown:
        body += _series_marks(frame, s)
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(y_label)} by {escape(x_label)}">' + "".join(body) + "</svg>")
