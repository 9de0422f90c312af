"""Two runs in words and tables (pure): the settings that differ and the held-out scores side by side."""
from __future__ import annotations

from typing import Any

from studio.evaluate.change import judged
from studio.evaluate.comparison import Comparison
from studio.evaluate.run_pair import RunPair
from studio.publish import scorecard

SCORE_HEADER = ["Metric", "A base", "A tuned", "B base", "B tuned", "B - A (tuned)", "95% CI", "Verdict"]
SETTINGS_HEADER = ["Setting", "Run A", "Run B"]
# Bookkeeping that differs between any two runs without changing what was trained.
IGNORED = ("data.dataset",)


def flat_settings(settings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{"train": {"epochs": 1}} -> {"train.epochs": 1}."""
    return {f"{section}.{name}": value for section, values in settings.items() for name, value in values.items()}


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return str(value) if value else "(default)"
    return str(value) if value != "" else "(none)"


def settings_diff(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> list[list[str]]:
    """[setting, A's value, B's value] for every setting the two runs set differently (the dataset path included
    only when it names different data: an upload's temporary path differs every time)."""
    fa, fb = flat_settings(a), flat_settings(b)
    rows = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, "(absent)"), fb.get(key, "(absent)")
        if va != vb and not (key in IGNORED and _same_file_name(va, vb)):
            rows.append([key, _shown(va), _shown(vb)])
    return rows


def _same_file_name(a: Any, b: Any) -> bool:
    return str(a).rsplit("/", 1)[-1] == str(b).rsplit("/", 1)[-1]


def _value(key: str, scores: Any) -> str:
    value = getattr(scores, key)
    if value is None:
        return "-"
    return f"{100 * value:.0f}%" if key == "exact_match" else f"{value:.1f}"


def score_rows(pair: RunPair) -> list[list[str]]:
    """One row per metric: each run's base and tuned score, B's tuned minus A's, its interval and verdict."""
    rows = []
    for key, label in scorecard.METRICS:
        change = pair.changes.get(key)
        if change is None:
            continue
        change = judged(key, change)  # a difference counts only when large enough to matter, as in Compare
        interval = (f"{change.low:+.1f} to {change.high:+.1f}" if change.low is not None and change.high is not None
                    else "-")
        verdict = scorecard.verdict_text(change) if interval != "-" else "-"
        rows.append([label, _value(key, pair.a.base), _value(key, pair.a.tuned), _value(key, pair.b.base),
                     _value(key, pair.b.tuned), f"{change.delta:+.1f}", interval, verdict])
    return rows


def headline(pair: RunPair, a_id: str, b_id: str) -> str:
    """The difference in BLEU between the two tuned models, in one sentence (judged by the minimum-effect rule)."""
    bleu = pair.changes.get("bleu")
    if bleu is None:
        return "The two runs have no BLEU to compare."
    bleu = judged("bleu", bleu)
    how = f", {scorecard.verdict_text(bleu)}" if bleu.verdict != "no interval" else ""
    return (f"Run B ({b_id}) tuned BLEU {bleu.tuned:.1f} vs run A ({a_id}) {bleu.base:.1f}: "
            f"{bleu.delta:+.1f} {scorecard.interval_text(bleu)}{how}.").replace("  ", " ").replace(" :", ":")


def partial_notes(a: Comparison, b: Comparison) -> list[str]:
    """A line for each run whose comparison was stopped early."""
    return [f"Run {name}: {note}" for name, cmp in (("A", a), ("B", b)) if (note := scorecard.partial_note(cmp))]
