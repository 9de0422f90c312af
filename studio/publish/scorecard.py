"""The before/after in words, shared by the Compare tab, the CLI summary, the report and the model card (pure text).

One source for "BLEU 0.3 -> 43.7, +43.4 [95% CI +35.1, +51.0], significant", the per-example win/tie/loss line
and the headline (the notes and marks around the tables: `studio.publish.marks`). Comparisons saved before
intervals existed still read sensibly.

The headline's rules:
- Its metric fits the data, chosen from the references before looking at any result: short, closed answers (the
  references' median is at most `LONG_ANSWER_WORDS` words) are headlined by corpus BLEU (exact match, all or
  nothing per answer, stays beside it in the cards); long, free-form ones by the held-out answer loss (the
  references' perplexity, adapter off vs on), since BLEU on a long, open answer mostly measures wording. A long-answer comparison without an answer loss keeps BLEU and says it says little.
  A judge's result, when one is given, follows as its own sentence (`headline_judge`: its pairs over the same rows
  as the scores; the opponent the base model or the prompt-only baseline).
- A change is called a gain or a loss only when its 95% interval excludes 0 AND it is at least the metric's minimum
  effect (`studio.evaluate.change.MINIMUM_EFFECT`: 2 points of BLEU / chrF / ROUGE-L, 5 percentage points of exact
  match, 5% of the references' perplexity); a sure but smaller change is "negligible", an unsure one no clear change.
- How many answers of each model ran into the length limit, when any did ("45 of 48 tuned answers were cut at 12
  tokens."): scores of cut answers say little about what the model would have written.
- Held-out prompts that repeat or nearly repeat a training prompt (`studio.data.overlap`, flagged when compared)
  measure memory, not what tuning taught: the headline and the metric lines score the other rows, and one sentence
  says how many were left out, unless the comparison ran with `generation.include_overlap` (then it says they count);
  the per-example counts, the prompt-only baseline and the judge leave out the same rows, and the table marks them.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from typing import Any

from studio.evaluate.change import PERPLEXITY_SHARE, Change, judged, perplexity_judged
from studio.evaluate.comparison import Comparison
from studio.evaluate.contamination import clean_comparison, overlapping
from studio.evaluate.judge_record import JudgeResult
from studio.evaluate.lengths import LOOPING

METRICS = (("bleu", "BLEU"), ("chrf", "chrF"), ("rouge_l", "ROUGE-L"), ("exact_match", "Exact match"))
NOTES = {"bleu": "corpus BLEU, 0-100", "chrf": "character n-gram F-score, 0-100",
         "rouge_l": "longest common subsequence F-measure, mean over examples, 0-100",
         "exact_match": "answers identical to the reference",
         "answer_loss": "perplexity of the reference answers given the prompt, lower is better"}
# References whose median is longer than this (about one long sentence) are long, free-form answers.
LONG_ANSWER_WORDS = 20
# A judge that gives the same verdict in both answer orders for fewer pairs than this is too weak to trust.
JUDGE_MIN_AGREEMENT = 0.7


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
    """'significant' (a gain or loss large enough to matter), 'negligible', 'not significant', or 'no interval'."""
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


def answer_loss_line(comparison: Comparison) -> MetricLine | None:
    """The references' perplexity base -> tuned (lower is better), or None when no answer loss was measured."""
    if comparison.answer_loss is None:
        return None
    change = perplexity_judged(comparison.answer_loss.perplexity)
    return MetricLine("answer_loss", "Answer perplexity", f"{change.base:.1f}", f"{change.tuned:.1f}", change)


def metric_lines(comparison: Comparison) -> list[MetricLine]:
    """The headline metric first, then BLEU, chrF, ROUGE-L, exact match and answer perplexity (when measured), over
    the rows the headline scores (`headline_comparison`)."""
    comparison, out = headline_comparison(comparison), []
    for key, label in METRICS:
        change = comparison.changes.get(key) or _fallback_change(comparison, key)
        if change is not None:
            change = judged(key, change)
            out.append(MetricLine(key, label, _shown(key, change.base), _shown(key, change.tuned), change))
    loss = answer_loss_line(comparison)
    if loss is not None:
        out = [loss, *out] if headline_metric(comparison) == "answer_loss" else [*out, loss]
    return out


def reference_words(comparison: Comparison) -> float:
    """The median word count of the held-out references (0 without rows)."""
    return statistics.median(len(r.reference.split()) for r in comparison.rows) if comparison.rows else 0.0


def long_answers(comparison: Comparison) -> bool:
    """Whether the references are long, free-form answers (median above LONG_ANSWER_WORDS words)."""
    return reference_words(comparison) > LONG_ANSWER_WORDS


def headline_metric(comparison: Comparison) -> str:
    """'answer_loss' for long answers when it was measured, else 'bleu'."""
    return "answer_loss" if long_answers(comparison) and comparison.answer_loss is not None else "bleu"


def partial_note(comparison: Comparison) -> str:
    """'Stopped after 16 of 24 examples; scores cover those 16.' for a stopped comparison, else ''."""
    if not comparison.partial:
        return ""
    n = len(comparison.rows)
    which = "that one" if n == 1 else f"those {n}"
    return f"Stopped after {n} of {comparison.n_planned} examples; scores cover {which}."


def _unit(line: MetricLine) -> str:
    return "percentage points" if line.key == "exact_match" else "points"


def _points(line: MetricLine) -> str:
    return f"{line.change.delta:+.1f} {_unit(line)}"


def metric_sentence(line: MetricLine, n: int) -> str:
    """A score metric's verdict in one sentence: a gain or loss only when sure and large enough to matter."""
    c, label, where = line.change, line.label, f"{n} held-out examples"
    verdict = c.verdict
    if verdict == "gain":
        return f"Tuning improved {label} by {_points(line)}, a significant gain on {where}."
    if verdict == "loss":
        return f"Tuning lowered {label} by {_points(line).lstrip('+')}, a significant loss on {where}."
    if verdict == "negligible":
        return (f"{label} changed by {_points(line)} on {where}: negligible, smaller than the {c.minimum:g} "
                f"{_unit(line)} a change needs to matter (though the 95% interval excludes 0).")
    if verdict == "not significant":
        return (f"{label} changed by {_points(line)} on {where}, but the 95% interval includes 0: not a "
                "significant change.")
    return f"{label} changed by {_points(line)} on {where} (no confidence interval)."


def answer_loss_sentence(comparison: Comparison) -> str:
    """The answer loss's verdict in one sentence ('' when none was measured)."""
    record, line = comparison.answer_loss, answer_loss_line(comparison)
    if record is None or line is None:
        return ""
    c, n = line.change, record.n
    span = f"from {c.base:.1f} to {c.tuned:.1f} ({100 * c.delta / c.base:+.0f}%)" if c.base else \
        f"from {c.base:.1f} to {c.tuned:.1f}"
    where = f"{n} held-out example{'s' if n != 1 else ''}"
    verdict = c.verdict
    if verdict == "gain":
        return (f"Tuning made the reference answers more likely: their perplexity fell {span}, a clear gain, lower "
                f"for {record.better} of {where}.")
    if verdict == "loss":
        return (f"Tuning made the reference answers less likely: their perplexity rose {span}, a clear loss, higher "
                f"for {record.worse} of {where}.")
    if verdict == "negligible":
        return (f"The reference answers' perplexity went {span} on {where}: negligible, smaller than the "
                f"{PERPLEXITY_SHARE:.0%} change that matters.")
    if verdict == "not significant":
        return (f"The reference answers' perplexity went {span} on {where}, but the 95% interval includes 0: no "
                "clear change.")
    return f"The reference answers' perplexity went {span} on {where} (no confidence interval)."


def judge_sentence(judge: dict[str, Any] | None) -> str:
    """A pairwise judge's result in one sentence ('' without one); a judge too inconsistent to trust says only that.

    Reads `win_rate`, `low`, `high` and `agreement` (fractions 0-1), `pairs`, `ties`, optional `opponent` (default
    'base') and `trusted` (default: agreement >= JUDGE_MIN_AGREEMENT).
    """
    if not judge:
        return ""
    agreement = judge.get("agreement")
    trusted = judge.get("trusted", agreement is None or agreement >= JUDGE_MIN_AGREEMENT)
    if not trusted:
        return (f"The judge gave the same verdict in both answer orders for only {agreement or 0:.0%} of pairs: too "
                "weak to trust, so it decides nothing here.")
    ci = f" [95% CI {judge['low']:.0%}, {judge['high']:.0%}]" if judge.get("low") is not None else ""
    agreed = f", agreeing with itself across both orders on {agreement:.0%}" if agreement is not None else ""
    return (f"A judge preferred the tuned answer over {opponent_text(judge.get('opponent', 'base'))} in "
            f"{judge['win_rate']:.0%}{ci} of {judge.get('pairs', '?')} pairs ({judge.get('ties', 0)} ties){agreed}.")


def opponent_text(opponent: str) -> str:
    """Whose answers the judge weighed the tuned ones against: 'the base one', "the prompt-only baseline's"."""
    return "the prompt-only baseline's" if opponent == "baseline" else f"the {opponent} one"


def headline_judge(comparison: Comparison, result: JudgeResult | None) -> dict[str, Any] | None:
    """The judge's summary (what `judge_sentence` reads) over the rows the headline scores (`headline_comparison`):
    pairs whose prompt repeats a training prompt are left out as the scores leave them out. None without a judge."""
    if result is None:
        return None
    if headline_comparison(comparison) is comparison:
        return result.summary()
    flagged = {i for i, row in enumerate(comparison.rows) if row.overlap}
    return replace(result, verdicts=[v for v in result.verdicts if v.index not in flagged]).summary()


def cut_sentence(comparison: Comparison) -> str:
    """'45 of 48 tuned answers were cut at 12 tokens.' per model with cut answers, and how many of them were stuck in a
    loop (`lengths.repeats_itself`); '' when none was cut or it was not recorded."""
    counts = [(who, c) for who in ("base", "tuned") if (c := comparison.cut_count(who)) is not None and c.cut]
    if len(counts) == 1:
        return counts[0][1].sentence(counts[0][0])
    if not counts:
        return ""
    both = " and ".join(f"{c.cut} of {c.total} {who}" for who, c in counts)
    if all(c.looped == c.cut for _, c in counts):
        return f"{both} answers were cut at {counts[0][1].limit} tokens, all of them {LOOPING}."
    looped = ", ".join(f"{c.looped} {who}" for who, c in counts if c.looped)
    return f"{both} answers were cut at {counts[0][1].limit} tokens" + (f"; {LOOPING}: {looped}." if looped else ".")


def _verdict(comparison: Comparison) -> str:
    if headline_metric(comparison) == "answer_loss":
        return answer_loss_sentence(comparison)
    line = next(m for m in metric_lines(comparison) if m.key == "bleu")
    sentence = metric_sentence(line, comparison.tuned.n)
    if long_answers(comparison):
        sentence += (f" BLEU says little about answers this long (the references' median is "
                     f"{reference_words(comparison):g} words), and no answer loss was measured.")
    return sentence


def headline_comparison(comparison: Comparison) -> Comparison:
    """The rows the headline scores: without those that repeat a training prompt, unless the run included them."""
    return comparison if comparison.generation.get("include_overlap") else clean_comparison(comparison)


def overlap_sentence(comparison: Comparison) -> str:
    """'3 held-out prompts that repeat or nearly repeat a training prompt are left out of the headline (...).'"""
    n, total = overlapping(comparison), len(comparison.rows)
    if not n:
        return ""
    s, verb, be = ("", "repeats", "is") if n == 1 else ("s", "repeat", "are")
    prompts = f"{n} held-out prompt{s} that {verb} or nearly {verb} a training prompt"
    if comparison.generation.get("include_overlap"):
        return f"{prompts} {be} counted in the headline (generation.include_overlap is on)."
    if n == total:
        return "Every held-out prompt repeats or nearly repeats a training prompt, so the headline counts them all."
    return (f"{prompts} {be} left out of the headline (include them with Include overlap in Compare's generation "
            "settings, generation.include_overlap=true).")


def headline(comparison: Comparison, judge: dict[str, Any] | None = None) -> str:
    """The verdict: the headline metric's change, a judge's win rate (when given), how many answers were cut, how
    many held-out prompts that repeat a training prompt were left out.

    A stopped comparison says so first.
    """
    scored = headline_comparison(comparison)
    parts = [partial_note(comparison), _verdict(scored), judge_sentence(judge), cut_sentence(comparison),
             overlap_sentence(comparison)]
    return " ".join(part for part in parts if part)


def tally_text(comparison: Comparison) -> str:
    """'18 better, 4 the same, 2 worse by sentence BLEU' over the rows the headline scores ('' without a tally)."""
    t = headline_comparison(comparison).tally
    if t is None:
        return ""
    return f"{t.wins} better, {t.ties} the same, {t.losses} worse by sentence BLEU"


def baseline_sentence(comparison: Comparison) -> str:
    """'prompting alone (3-shot): BLEU 1.9; tuned 48.4, +46.5 [95% CI ...], significant', why it did not run, or ''
    (over the rows the headline scores)."""
    baseline = headline_comparison(comparison).baseline
    if baseline is None:
        return ""
    if not baseline.ran:
        return baseline.reason
    key = "bleu" if headline_metric(comparison) == "bleu" else "rouge_l"  # BLEU says little on long answers
    change, label = judged(key, baseline.changes[key]), dict(METRICS)[key]
    return (f"{baseline.label}: {label} {_shown(key, change.base)}; tuned {_shown(key, change.tuned)}, "
            f"{change_text(change)}")
