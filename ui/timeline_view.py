"""Pure renderers for "Watch it learn": one timeline point as HTML (answers at that step next to the base model's),
and the note on what the timeline can choose."""
from __future__ import annotations

import html

from studio.evaluate.timeline import Timeline, choice_note

EXPLAIN = ("Runs save a few lightweight adapter snapshots while they train (**Snapshots** in the advanced training "
           "settings). Score them all on the held-out rows to see **when** the model learned **what**: held-out BLEU "
           "at each step beside the loss curve, and the answers at each step with the slider. The best snapshot by "
           "a **validation** score (never the test rows shown here) can become the run's adapter; the final adapter "
           "is kept and can come back.")


def _step_name(timeline: Timeline, step: int) -> str:
    if step == 0:
        return "the base model (step 0, adapter disabled)"
    last = " (the last step)" if step == timeline.final_step else ""
    return f"step {step} of {timeline.final_step}{last}"


def _cell(answer: str, reference: str) -> str:
    mark = ' <span class="tl-exact" title="identical to the reference">✓</span>' if answer.strip() == \
        reference.strip() else ""
    return f"<td>{html.escape(answer) or '<em>(nothing)</em>'}{mark}</td>"


def point_html(timeline: Timeline, index: int) -> str:
    """The answers at point `index` beside the base model's, with the point's scores in a heading."""
    if not timeline.points:
        return ""
    index = max(0, min(index, len(timeline.points) - 1))
    point, base = timeline.points[index], timeline.points[0]
    scores = f"held-out BLEU {point.test.bleu:.1f}, exact match {point.test.exact_match:.0%}"
    if point.validation is not None:
        scores += f"; validation BLEU {point.validation.bleu:.1f}"
    if point.eval_loss is not None:
        scores += f"; eval loss {point.eval_loss:.4g}"
    in_use = " · <strong>in use as the run's adapter</strong>" if point.step and point.step == timeline.chosen_step \
        else ""
    rows = "".join(
        f"<tr><td>{html.escape(ex['instruction'])}"
        + (f"<br><span class='tl-input'>{html.escape(ex['input'])}</span>" if ex["input"] else "")
        + f"</td><td>{html.escape(ex['reference'])}</td>{_cell(base.answers[i], ex['reference'])}"
        + f"{_cell(point.answers[i], ex['reference'])}</tr>"
        for i, ex in enumerate(timeline.examples))
    return (f'<div class="timeline-point"><p class="tl-head">Answers of {_step_name(timeline, point.step)}: '
            f"{scores}{in_use}</p><table class=\"tl-table\"><thead><tr><th>Instruction</th><th>Reference</th>"
            f"<th>Base model</th><th>At step {point.step}</th></tr></thead><tbody>{rows}</tbody></table></div>")


def timeline_note(timeline: Timeline) -> str:
    """Markdown: how far the scoring got, what is in use, and what can be chosen (or why nothing can)."""
    lines = []
    if timeline.partial:
        lines.append(f"Stopped after {len(timeline.points)} of {timeline.planned} points; the rest were not scored.")
    if timeline.chosen_step:
        lines.append(f"The run uses its **step-{timeline.chosen_step} snapshot** as its adapter (the final adapter is "
                     "kept: **Restore the final adapter** brings it back).")
    lines.append(choice_note(timeline))
    return "\n\n".join(lines)
