"""The notes and marks around the before/after tables, shared by the Compare tab, the CLI summary, the report and
the model card (pure text): the one line that says how answers were cut (the same rule for base and tuned), how
the intervals were computed, how each answer ended, and the marks on an answer that ran into the length limit and
on a row whose prompt repeats a training prompt."""
from __future__ import annotations

import json

from studio.evaluate.baseline_record import BaselineRow
from studio.evaluate.comparison import Comparison, ComparisonRow
from studio.evaluate.lengths import cut_label, limit_ending, repeats_itself
from studio.publish.scorecard import headline_comparison


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # shows "\n### " with its newline visible


def cut_note(comparison: Comparison) -> str:
    """One line: how base and tuned answers were cut (the same stops for both)."""
    if comparison.stop_strings is None:
        return "How answers were cut was not recorded for this comparison; compare again to record it."
    eos = " or ".join(comparison.eos_tokens) or "EOS"
    stops = ", ".join(map(_quoted, comparison.stop_strings))
    where = f"at the first {stops} or at {eos}" if stops else f"at {eos} only (the template has no stop strings)"
    return f"Answers cut {where}, the same rule for base and tuned; the raw continuations are kept."


def method_note(comparison: Comparison) -> str:
    """How the intervals were computed, in one line, and the answer loss's arithmetic where it was not fp32."""
    method = comparison.bootstrap.get("method")
    note = f"Intervals: {method}." if method else "No confidence intervals were recorded for this comparison."
    loss = comparison.answer_loss
    if loss is not None and loss.precision != "fp32":
        note += (f" The answer loss was read with a {loss.precision} copy of the weights (generation.answer_loss_"
                 "precision); the answers came from the model's own.")
    return note


def ending(text: str, raw: str, comparison: Comparison) -> str:
    """How one answer ended: 'cut at "\\n### "', 'ended with <eos>', 'ran to the token limit' (', stuck in a loop' when
    it was repeating itself); '' if not recorded."""
    if not raw:
        return ""
    whole = raw.strip()
    for eos in comparison.eos_tokens:
        if whole.endswith(eos) and whole.removesuffix(eos).strip() == text:
            return f"ended with {eos}"
    if whole == text:
        return limit_ending(text)
    # The first stop in the raw text; one that began in the prompt's last characters shows without its start.
    found = [(raw.find(s.lstrip()), s) for s in comparison.stop_strings or [] if s.lstrip() and s.lstrip() in raw]
    return f"cut at {_quoted(min(found)[1])}" if found else "cut"


def cut_mark(comparison: Comparison, row: ComparisonRow, who: str) -> str:
    """The table's mark on `who`'s answer of a row: 'cut at 128 tokens' when it ran into the limit ('..., stuck in a
    loop' when it was repeating itself), else ''."""
    if not getattr(row, f"{who}_cut") or not comparison.limit:
        return ""
    return cut_label(comparison.limit, repeats_itself(getattr(row, who)))


def baseline_cut_mark(comparison: Comparison, row: BaselineRow) -> str:
    """The table's mark on a prompt-only baseline answer: 'cut at 128 tokens' when it ran into the limit, else ''."""
    limit = comparison.baseline.limit if comparison.baseline is not None else None
    return cut_label(limit, repeats_itself(row.answer)) if row.cut and limit else ""


def overlap_mark(comparison: Comparison, row: ComparisonRow) -> str:
    """The table's mark on a row whose prompt repeats a training prompt: 'repeats a training prompt' / 'nearly
    repeats a training prompt', with ', left out of the headline' when it is; '' for the other rows."""
    if not row.overlap:
        return ""
    mark = "nearly repeats a training prompt" if row.overlap == "near" else "repeats a training prompt"
    return mark + (", left out of the headline" if headline_comparison(comparison) is not comparison else "")
