"""Look and feel: the theme, a little CSS, and small pure HTML fragments (header, cards, progress bar)."""
from __future__ import annotations

import html
import os

import gradio as gr

TITLE = "Instruction-Tuning Studio"
TAGLINE = ("Load instruction data, pick a prompt template, LoRA-tune a small language model on this machine, "
           "then compare its answers before and after.")

CSS = """
.studio-header h1 { margin: 0 0 2px 0; font-size: 1.6rem; }
.studio-header p { margin: 0; color: var(--body-text-color-subdued); }
.studio-note { font-size: 0.85rem; padding: 6px 10px; border-radius: 6px; background: #fef3c7; color: #78350f; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; }
.card { min-width: 0; border: 1px solid var(--border-color-primary); border-radius: 10px;
        padding: 10px 14px; background: var(--background-fill-secondary); }
.card .label { font-size: 0.8rem; color: var(--body-text-color-subdued); text-transform: uppercase; }
.card .value { font-size: 1.6rem; font-weight: 600; line-height: 1.3; overflow-wrap: anywhere; }
.card .sub { font-size: 0.8rem; color: var(--body-text-color-subdued); overflow-wrap: break-word; }
.card.big .value { font-size: 2.6rem; }
.card.good .value { color: #15803d; }
.card.bad .value { color: #b91c1c; }
.card.wide { grid-column: span 2; }
.card .value .before { color: var(--body-text-color-subdued); font-weight: 500; }
.card .badge { display: inline-block; margin-top: 4px; padding: 1px 10px; border-radius: 999px; font-size: 0.8rem;
               font-weight: 600; background: var(--background-fill-primary); color: var(--body-text-color-subdued); }
.card.good .badge { background: #dcfce7; color: #15803d; }
.card.bad .badge { background: #fee2e2; color: #b91c1c; }
.compare-headline { font-size: 1.1rem; font-weight: 600; margin: 0 0 10px 0; }
.compare-headline.good { color: #15803d; }
.compare-headline.bad { color: #b91c1c; }
.cut-note { font-size: 0.85rem; color: var(--body-text-color-subdued); margin: 10px 0 0 0; }
.raw-list details { border-bottom: 1px solid var(--border-color-primary); padding: 6px 0; }
.raw-list summary { cursor: pointer; }
.raw-badge { font-size: 0.75rem; padding: 1px 8px; border-radius: 999px; background: #fef3c7; color: #78350f; }
.raw-pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 280px), 1fr)); gap: 10px;
            margin-top: 6px; }
.raw-pair pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0 0 0; padding: 8px;
                border-radius: 6px; background: var(--background-fill-secondary); font-size: 0.85rem; }
.raw-title { font-weight: 600; font-size: 0.85rem; }
.raw-title span { font-weight: 400; color: var(--body-text-color-subdued); }
.progress-wrap { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 14px; }
.progress-bar { height: 14px; background: var(--background-fill-secondary); border-radius: 7px; overflow: hidden; }
.progress-fill { height: 100%; background: linear-gradient(90deg, #f59e0b, #f97316); transition: width .4s; }
.progress-text { font-size: 0.9rem; margin-top: 6px; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.progress-status { font-weight: 600; }
.token-preview { max-height: 420px; overflow: auto; border: 1px solid var(--border-color-primary);
                 border-radius: 8px; padding: 8px 10px; }
.token-preview .tok-legend, .token-preview .tok-counts { margin-bottom: 6px; }
.answer-box textarea { font-family: ui-monospace, monospace; }
"""


def theme() -> gr.themes.Base:
    """A clean, neutral theme with an amber accent (the colour of trained tokens in the preview)."""
    return gr.themes.Soft(primary_hue="amber", secondary_hue="slate", neutral_hue="slate")


def header_html() -> str:
    """The one-line explanation at the top of the page, plus a note when running on a Hugging Face Space."""
    note = ""
    if os.environ.get("SPACE_ID"):
        note = ('<p class="studio-note">Running on a Hugging Face Space: runs are stored on the Space\'s disk and '
                "vanish when it restarts unless you download the adapter or the report.</p>")
    return f'<div class="studio-header"><h1>{TITLE}</h1><p>{html.escape(TAGLINE)}</p>{note}</div>'


def card(label: str, value: str, sub: str = "", kind: str = "", before: str = "", badge: str = "") -> str:
    """One figure in a card: a small label, a big value (after a muted `before ->` when given), a caption, a badge."""
    shown = html.escape(value)
    if before:
        shown = f'<span class="before">{html.escape(before)}</span> → {shown}'
    sub_html = f'<div class="sub">{html.escape(sub)}</div>' if sub else ""
    badge_html = f'<span class="badge">{html.escape(badge)}</span>' if badge else ""
    return (f'<div class="card {kind}"><div class="label">{html.escape(label)}</div>'
            f'<div class="value">{shown}</div>{sub_html}{badge_html}</div>')


def cards(*items: str, min_px: int = 140) -> str:
    """Cards side by side in equal columns at least `min_px` wide (fewer per row when space is short)."""
    style = f"grid-template-columns: repeat(auto-fit, minmax(min(100%, {min_px}px), 1fr))"
    return f'<div class="cards" style="{style}">{"".join(items)}</div>'


def duration(seconds: float | None) -> str:
    """Seconds as a short human duration ("45 s", "3 min 20 s", "1 h 05 min")."""
    if seconds is None:
        return "–"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _short(value: float) -> str:
    """Three significant digits without scientific notation: 1.02, 10.2, 102, 1020."""
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def human_bytes(n: float) -> str:
    """1536 -> '1.50 KiB'; 1.07e9 -> '1020 MiB' stays below a GiB, 2.2e9 -> '2.05 GiB'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{_short(n / size)} {unit}"
    return f"{int(n)} B"


def human_count(n: float) -> str:
    """1234567 -> '1.23 M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{_short(n / size)} {unit}"
    return f"{n:g}"


def progress_html(status: str, progress: dict | None = None, queue_position: int | None = None) -> str:
    """The training progress bar with step/total, ETA, tokens/s, elapsed time and queue position."""
    p = progress or {}
    fraction = max(0.0, min(1.0, float(p.get("fraction") or 0.0)))
    parts = [f'<span class="progress-status">{html.escape(status.capitalize() or "Idle")}</span>']
    if queue_position:
        parts.append(f"<span>position {queue_position} in the queue (one training at a time)</span>")
    if p.get("total_steps"):
        parts.append(f"<span>step {p.get('step', 0)} / {p['total_steps']}</span>")
    if p.get("epoch") is not None and p.get("total_steps"):
        parts.append(f"<span>epoch {float(p['epoch']):.2f}</span>")
    if p.get("tokens_per_second"):
        parts.append(f"<span>{float(p['tokens_per_second']):.0f} tokens/s</span>")
    if p.get("elapsed"):
        parts.append(f"<span>elapsed {duration(p['elapsed'])}</span>")
    if p.get("eta_seconds") is not None and status == "training":
        parts.append(f"<span>ETA {duration(p['eta_seconds'])}</span>")
    return (f'<div class="progress-wrap"><div class="progress-bar"><div class="progress-fill" '
            f'style="width:{fraction * 100:.1f}%"></div></div>'
            f'<div class="progress-text">{"".join(parts)}</div></div>')
