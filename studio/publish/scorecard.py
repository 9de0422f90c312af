"""The before/after in words, shared by the Compare tab, the CLI summary, the report and the model card (pure text).

One source for "BLEU 0.3 -> 43.7, +43.4 [95% CI +35.1, +51.0], significant", the per-example win/tie/loss line and
the one line that says how answers were cut. Comparisons saved before intervals existed still read sensibly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from studio.evaluate.comparison import Change, Comparison

METRICS = (("bleu", "BLEU"), ("chrf", "chrF"), ("rouge_l", "ROUGE-L"), ("exact_match", "Exact match"))
NOTES = {"bleu": "corpus BLEU, 0-100", "chrf": "character n-gram F-score, 0-100",
         "rouge_l": "longest common subsequence F-measure, mean over examples, 0-100",
         "exact_match": "answers identical to the reference"}


@dataclass
class MetricLine:
    """One metric before and after: display values, the change, its interval text and verdict."""

    key: str
    label: str
    before: str
    after: str
    change: Change

    def text(self, arrow: str = "->") -> str:
        """'BLEU 0.3 -> 43.7, +43.4 [95% CI +35.1, +51.0], significant'."""
        return f"{self.label} {self.before} {arrow} {self.after}, {change_text(self.change)}"

    def cells(self) -> list[str]:
        """A table row: metric, base, tuned, change, interval of the change, verdict ('-' without an interval)."""
        c = self.change
        interval = f"{c.low:+.1f} to {c.high:+.1f}" if c.low is not None and c.high is not None else "-"
        return [self.label, self.before, self.after, f"{c.delta:+.1f}", interval,
                verdict_text(c) if interval != "-" else "-"]


CELLS_HEADER = ["Metric", "Base", "Tuned", "Change", "95% CI of the change", "Verdict"]


def _shown(key: str, value: float) -> str:
    return f"{value:.0f}%" if key == "exact_match" else f"{value:.1f}"


def interval_text(change: Change) -> str:
    """'[95% CI +35.1, +51.0]', or '' when there is no interval."""
    if change.low is None or change.high is None:
        return ""
    return f"[95% CI {change.low:+.1f}, {change.high:+.1f}]"


def verdict_text(change: Change) -> str:
    """'significant', 'not significant', or 'no interval'."""
    return "significant" if change.significant else change.verdict


def delta_text(change: Change) -> str:
    """'+43.4 [95% CI +35.1, +51.0]' (the change alone when there is no interval)."""
    return f"{change.delta:+.1f} {interval_text(change)}".rstrip()


def change_text(change: Change) -> str:
    """'+43.4 [95% CI +35.1, +51.0], significant' (the change alone when the comparison has no interval)."""
    if change.verdict == "no interval":
        return delta_text(change)
    return f"{delta_text(change)}, {verdict_text(change)}"


def _fallback_change(comparison: Comparison, key: str) -> Change | None:
    # Old comparisons: the corpus scores without an interval (exact match in percentage points like new ones).
    b, t = getattr(comparison.base, key), getattr(comparison.tuned, key)
    if b is None or t is None:
        return None
    scale = 100.0 if key == "exact_match" else 1.0
    return Change(base=scale * b, tuned=scale * t, delta=scale * (t - b))


def metric_lines(comparison: Comparison) -> list[MetricLine]:
    """BLEU, chrF, ROUGE-L and exact match before -> after with their change (ROUGE-L only when measured)."""
    out = []
    for key, label in METRICS:
        change = comparison.changes.get(key) or _fallback_change(comparison, key)
        if change is not None:
            out.append(MetricLine(key, label, _shown(key, change.base), _shown(key, change.tuned), change))
    return out


def headline(comparison: Comparison) -> str:
    """The verdict in one sentence: is the BLEU change significant?"""
    line = metric_lines(comparison)[0]
    n = comparison.tuned.n
    verdict = line.change.verdict
    if verdict == "gain":
        return f"Tuning improved BLEU by {line.change.delta:+.1f} points, a significant gain on {n} held-out examples."
    if verdict == "loss":
        return f"Tuning lowered BLEU by {line.change.delta:.1f} points, a significant loss on {n} held-out examples."
    if verdict == "not significant":
        return (f"BLEU changed by {line.change.delta:+.1f} points on {n} held-out examples, but the 95% interval "
                "includes 0: not a significant change.")
    return f"BLEU changed by {line.change.delta:+.1f} points on {n} held-out examples (no confidence interval)."


def tally_text(comparison: Comparison) -> str:
    """'18 better, 4 the same, 2 worse by sentence BLEU', or '' for comparisons without a tally."""
    t = comparison.tally
    if t is None:
        return ""
    return f"{t.wins} better, {t.ties} the same, {t.losses} worse by sentence BLEU"


def method_note(comparison: Comparison) -> str:
    """How the intervals were computed, in one line."""
    method = comparison.bootstrap.get("method")
    return f"Intervals: {method}." if method else "No confidence intervals were recorded for this comparison."


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


def ending(text: str, raw: str, comparison: Comparison) -> str:
    """How one answer ended: 'cut at "\\n### "', 'ended with <eos>', 'ran to the token limit' ('' if not recorded)."""
    if not raw:
        return ""
    whole = raw.strip()
    for eos in comparison.eos_tokens:
        if whole.endswith(eos) and whole.removesuffix(eos).strip() == text:
            return f"ended with {eos}"
    if whole == text:
        return "ran to the token limit"
    # The first stop in the raw text; one that began in the prompt's last characters shows without its start.
    found = [(raw.find(s.lstrip()), s) for s in comparison.stop_strings or [] if s.lstrip() and s.lstrip() in raw]
    return f"cut at {_quoted(min(found)[1])}" if found else "cut"
