"""Pure renderers for the Demo tab: the step bar, the line under it, and three examples in large type (data in, HTML out).

Also the CSS of the audience page, the presentation mode and narrow screens (added to the theme's CSS by app.py).
"""
from __future__ import annotations

import html
from typing import Any

from studio.demo import STAGES, best_rows, examples_heading, task_text
from studio.evaluate.comparison import Comparison
from studio.publish import scorecard
from ui.notices import empty_html, progress_bar
from ui.theme import duration, progress_html

CLIP = 180  # characters of an answer shown on the audience page (the base model rambles)
EMPTY_DEMO = ("Nothing has run yet.", "Press ▶ Run the before/after demo: it trains a LoRA adapter on the current data "
              "and settings (the built-in word tasks for a first visit) while the loss chart grows, then answers "
              "held-out prompts with the model before and after tuning, and lands here with the scores, three "
              "examples and the report.")


def steps_html(stage: str = "", status: str = "") -> str:
    """The five steps, those done ticked, the current one highlighted (marked stopped/failed where it ended)."""
    keys = [key for key, _ in STAGES]
    current = keys.index(stage) if stage in keys else -1
    ended = status in ("stopped", "failed")
    items = []
    for i, (key, label) in enumerate(STAGES):
        if i < current or (status == "completed" and i <= current):
            kind, mark = "done", "✓"
        elif i == current:
            kind, mark = (status, "■") if ended else ("current", str(i + 1))
        else:
            kind, mark = "todo", str(i + 1)
        items.append(f'<li class="{kind}"><span class="num">{mark}</span>{html.escape(label)}</li>')
    return f'<ol class="demo-steps">{"".join(items)}</ol>'


def status_html(demo: Any, queue_position: int = 0) -> str:
    """One line (with a bar where it helps) saying what the demo is doing now, or how it ended."""
    if demo is None:
        return empty_html(EMPTY_DEMO)
    status, stage, p = demo.status, demo.stage, demo.progress()
    if status in ("stopped", "failed"):
        said = demo.error or demo.message
        head = "" if said.startswith(status.capitalize()) else f"<strong>{status.capitalize()}.</strong> "
        return f'<div class="demo-ended {status}">{head}{html.escape(said)}</div>'
    if status == "completed":
        n = demo.comparison.tuned.n if demo.comparison is not None else 0
        return (f'<div class="demo-ended completed"><strong>Done in {duration(p.get("demo_seconds"))}.</strong> '
                f'Trained {p.get("step", 0)} steps, then the base and the tuned model answered {n} held-out prompts '
                "they had never seen.</div>")
    if stage == "data":
        waiting = f"position {queue_position} in the queue (one training at a time)" if queue_position else ""
        return progress_bar(0.0, waiting or "Loading and splitting the data", "Queued" if waiting else "Data")
    if stage == "model":
        return progress_bar(0.0, "Loading the base model (the first start also prepares it; see above)", "Model")
    if stage == "compare":
        a = p.get("answering") or {}
        total, done = a.get("total") or 0, a.get("done") or 0
        half = 0.5 if a.get("which") == "tuned" else 0.0
        fraction = half + 0.5 * done / total if total else 0.0
        who = "tuned model (adapter on)" if a.get("which") == "tuned" else "base model (adapter off)"
        if str(a.get("which") or "").startswith("baseline"):
            who = "base model with training examples in front (prompting alone)"
        return progress_bar(fraction, f"The {who} answers the held-out prompts: {done} / {total}", "Comparing")
    return progress_html(status, p)


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= CLIP else flat[:CLIP - 1] + "…"


def _answer(kind: str, title: str, text: str, good: bool = False) -> str:
    shown = html.escape(_clip(text)) if text.strip() else '<em class="muted">(nothing)</em>'
    return (f'<div class="demo-answer {kind}{" good" if good else ""}"><span class="tag">{title}</span>'
            f"<p>{shown}</p></div>")


def examples_html(comparison: Comparison, k: int = 3) -> str:
    """The k examples tuning helped most, side by side: the task, the answer before and after, the reference."""
    cards, baseline = [], comparison.baseline if comparison.baseline and comparison.baseline.ran else None
    index = {id(row): i for i, row in enumerate(comparison.rows)}
    for row in best_rows(comparison, k):
        # The third card: the base model with a few training examples in front (could prompting alone do it?).
        shots = "" if baseline is None else _answer(
            "baseline", f"Prompting alone ({baseline.shots}-shot)", baseline.rows[index[id(row)]].answer)
        cards.append(
            f'<div class="demo-example"><div class="demo-task">{html.escape(_clip(task_text(row)))}</div>'
            f"{_answer('before', 'Before tuning', row.base)}{shots}"
            f"{_answer('after', 'After tuning', row.tuned, good=row.tuned_exact)}"
            f'<div class="demo-expected">Expected: {html.escape(_clip(row.reference))}</div></div>')
    note = scorecard.baseline_sentence(comparison)
    return (f'<h3 class="demo-heading">{html.escape(examples_heading(comparison))}</h3>'
            f'<div class="demo-examples">{"".join(cards)}</div>'
            + (f'<p class="demo-baseline">{html.escape(note[:1].upper() + note[1:])}</p>' if note else ""))


def details(demo: Any) -> dict:
    """The demo's state for API clients: run, status, stage, training step, comparison progress, message."""
    if demo is None:
        return {}
    p = demo.progress()
    cmp = demo.comparison
    return {"run_id": demo.run_id, "status": demo.status, "stage": demo.stage, "step": p.get("step"),
            "total_steps": p.get("total_steps"), "answering": p.get("answering"), "message": demo.message,
            "error": demo.error, "bleu": [round(cmp.base.bleu, 1), round(cmp.tuned.bleu, 1)] if cmp else None,
            "headline": scorecard.headline(cmp) if cmp else ""}


CSS = """
.demo-callout { border: 1px solid var(--border-color-primary); border-radius: 12px; padding: 10px 14px;
                background: var(--background-fill-secondary); align-items: center; }
.demo-callout p { margin: 0; }
.demo-run button, button.demo-run { font-size: 1.15rem; }
.demo-steps { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 10px; list-style: none; padding: 0; margin: 4px 0 8px 0; }
.demo-steps li { display: flex; align-items: center; gap: 6px; margin: 0; padding: 4px 12px 4px 4px; border-radius: 999px;
                 border: 1px solid var(--border-color-primary); color: var(--body-text-color-subdued);
                 font-weight: 600; }
.demo-steps .num { display: inline-flex; width: 24px; height: 24px; border-radius: 50%; align-items: center;
                   justify-content: center; background: var(--background-fill-secondary); font-size: 0.85rem; }
.demo-steps li.current { color: var(--body-text-color); border-color: #f59e0b; }
.demo-steps li.current .num { background: #f59e0b; color: white; }
.demo-steps li.done { color: #15803d; }
.demo-steps li.done .num { background: #dcfce7; }
.demo-steps li.stopped, .demo-steps li.failed { color: #b91c1c; border-color: #fca5a5; }
.demo-ended { padding: 8px 12px; border-radius: 8px; background: var(--background-fill-secondary); }
.demo-ended.stopped, .demo-ended.failed { background: #fef3c7; color: #78350f; }
.demo-heading { margin: 14px 0 8px 0; }
.demo-examples { display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(min(100%, 260px), 1fr)); }
.demo-example { border: 1px solid var(--border-color-primary); border-radius: 12px; padding: 12px 14px;
                display: flex; flex-direction: column; gap: 8px; min-width: 0; }
.demo-task { font-size: 1.15rem; font-weight: 600; overflow-wrap: anywhere; }
.demo-answer { border-radius: 8px; padding: 6px 10px; background: var(--background-fill-secondary); }
.demo-answer p { margin: 2px 0 0 0; font-size: 1.3rem; line-height: 1.35; overflow-wrap: anywhere;
                 font-family: ui-monospace, monospace; }
.demo-answer .tag { font-size: 0.75rem; text-transform: uppercase; color: var(--body-text-color-subdued); }
.demo-answer.after { background: #fff7ed; }
.demo-answer.after.good { background: #dcfce7; }
.demo-expected { font-size: 0.95rem; color: var(--body-text-color-subdued); overflow-wrap: anywhere; }
.muted { color: var(--body-text-color-subdued); }
.empty-state { padding: 10px 14px; border: 1px dashed var(--border-color-primary); border-radius: 10px;
               color: var(--body-text-color-subdued); }
.empty-state strong { color: var(--body-text-color); }
.cold-start { margin-bottom: 6px; }
.cold-start.failed { padding: 8px 12px; border-radius: 8px; background: #fee2e2; color: #991b1b; }
.studio-top { align-items: center; }
.block.studio-notice:not(:has(.cold-start, .empty-state)), .block.demo-note:not(:has(p)) { display: none; }
/* Presentation mode (a toggle in the header sets body.presenting): large type, settings out of sight. */
body.presenting .gradio-container { zoom: 1.25; }
body.presenting .studio-settings, body.presenting .studio-header p, body.presenting .cut-note,
body.presenting #presentation-toggle .info-text,
body.presenting button[role="tab"][data-tab-id="model"] { display: none !important; }
body.presenting .demo-answer p { font-size: 1.45rem; }
/* Narrow screens: step names stay in view (tabs wrap), wide tables scroll sideways, charts fit. */
@media (max-width: 640px) {
  .tabs [role="tablist"] { flex-wrap: wrap; row-gap: 4px; }
  .tabs [role="tablist"] button { padding: 0 8px; font-size: 0.85rem; }
  /* Gradio sizes a table's columns from its container's width: widen the container, let its block scroll. */
  .block:has(> .table-container) { overflow-x: auto !important; }
  .table-container { min-width: 600px; }
  .js-plotly-plot, .plot-container, .svg-container { max-width: 100% !important; }
  .studio-header h1 { font-size: 1.3rem; }
  .demo-answer p { font-size: 1.1rem; }
}
"""
