"""Compare's side of the contamination guard: flag the compared rows whose prompt repeats a training prompt, and the
comparison the headline scores without them (no torch).

Which prompts repeat is `studio.data.overlap`'s rule; here the flags are put on a `Comparison` (per row, and per
compared example for the answer loss, whose examples are numbered by their place in the held-out list), and
`clean_comparison` rescored on the other rows exactly as Compare scored them: corpus BLEU / chrF from the answers,
ROUGE-L and exact match from the rows' own per-example scores, the same paired bootstrap and win/tie/loss (the
prompt-only baseline's changes over the same rows too).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from studio.data.overlap import NEAR_THRESHOLD, SHINGLE_WORDS, find_overlaps, overlap_flags
from studio.evaluate.answer_loss_record import AnswerLoss, summarise
from studio.evaluate.baseline_record import BaselineRecord
from studio.evaluate.comparison import Comparison, ComparisonRow
from studio.evaluate.scoring import ExampleScore, Scores
from studio.evaluate.significance import paired_bootstrap, win_tie_loss
from studio.examples import Example

RULE = (f"the same words after normalising case, punctuation and spacing, or a Jaccard similarity of word "
        f"{SHINGLE_WORDS}-gram sets of at least {NEAR_THRESHOLD:g}")


def held_out_flags(train: Sequence[Example], examples: Sequence[Example]) -> list[str]:
    """One flag per held-out example: "exact" / "near" when its prompt repeats a training prompt, else ""."""
    return overlap_flags(find_overlaps(train, examples), len(examples))


def mark_overlap(comparison: Comparison, examples: Sequence[Example], train: Sequence[Example]) -> Comparison:
    """Flag the comparison's rows (and its answer-loss examples) whose prompt repeats a training prompt; in place.

    `examples` are the held-out examples the comparison set out to answer, in order (a stopped comparison's rows are
    some of them, matched by their instruction, input and reference).
    """
    flags = held_out_flags(train, examples)
    by_row: dict[tuple[str, str, str], str] = {}
    for example, flag in zip(examples, flags):
        key = (example.instruction, example.input, example.output)
        by_row[key] = by_row.get(key) or flag  # rows alike in these three but not in their history: flagged wins
    for row in comparison.rows:
        row.overlap = by_row.get((row.instruction, row.input, row.reference), "")
    comparison.overlap = {"flags": flags, "rule": RULE}
    return comparison


def overlapping(comparison: Comparison) -> int:
    """How many compared rows repeat a training prompt (0 when none or not checked)."""
    return sum(1 for row in comparison.rows if row.overlap)


def clean_comparison(comparison: Comparison) -> Comparison:
    """The comparison without its overlapping rows, rescored; itself when none (or every row) overlaps.

    Kept on the comparison, keyed by its flags: every surface asks for it several times per page.
    """
    rows = [row for row in comparison.rows if not row.overlap]
    if len(rows) in (0, len(comparison.rows)):
        return comparison
    flags = tuple(row.overlap for row in comparison.rows)
    cached = vars(comparison).get("_clean")
    if cached is not None and cached[0] == flags:
        return cached[1]
    clean = _rescored(comparison, rows)
    vars(comparison)["_clean"] = (flags, clean)
    return clean


def _rescored(comparison: Comparison, rows: list[ComparisonRow]) -> Comparison:
    """`comparison` with only `rows`, its scores, intervals, tally and answer loss computed again on them."""
    references, base, tuned = ([getattr(r, who) for r in rows] for who in ("reference", "base", "tuned"))
    each = {who: [ExampleScore(bleu=getattr(r, f"{who}_bleu"), chrf=getattr(r, f"{who}_chrf"),
                               exact=getattr(r, f"{who}_exact"), rouge_l=getattr(r, f"{who}_rouge_l") or 0.0)
                  for r in rows] for who in ("base", "tuned")}
    changes = paired_bootstrap(references, base, tuned, each["base"], each["tuned"])
    return replace(comparison, rows=rows, changes=changes, base=_scores(changes, "base", len(rows)),
                   tuned=_scores(changes, "tuned", len(rows)),
                   tally=win_tie_loss([s.bleu for s in each["base"]], [s.bleu for s in each["tuned"]]),
                   planned=len(rows) + comparison.n_planned - len(comparison.rows),
                   answer_loss=_clean_answer_loss(comparison), baseline=_clean_baseline(comparison))


def _scores(changes: dict, who: str, n: int) -> Scores:
    # The bootstrap's whole-sample values are the corpus scores (exact match in percentage points there).
    value = {name: getattr(change, who) for name, change in changes.items()}
    return Scores(bleu=value["bleu"], chrf=value["chrf"], exact_match=value["exact_match"] / 100, n=n,
                  rouge_l=value["rouge_l"])


def _clean_baseline(comparison: Comparison) -> BaselineRecord | None:
    """The prompt-only baseline on the rows not flagged, tuned vs baseline rescored as `score_baseline` scores it."""
    record = comparison.baseline
    if record is None or not record.ran or len(record.rows) != len(comparison.rows):
        return record
    kept = [(row, shot) for row, shot in zip(comparison.rows, record.rows) if not row.overlap]
    references, answers, tuned = ([r.reference for r, _ in kept], [s.answer for _, s in kept],
                                  [r.tuned for r, _ in kept])
    each = [ExampleScore(s.bleu, s.chrf, s.exact, s.rouge_l) for _, s in kept]
    tuned_each = [ExampleScore(r.tuned_bleu, r.tuned_chrf, r.tuned_exact, r.tuned_rouge_l or 0.0) for r, _ in kept]
    changes = paired_bootstrap(references, answers, tuned, each, tuned_each)
    return replace(record, rows=[s for _, s in kept], changes=changes, scores=_scores(changes, "base", len(kept)),
                   tally=win_tie_loss([s.bleu for s in each], [s.bleu for s in tuned_each]))


def _clean_answer_loss(comparison: Comparison) -> AnswerLoss | None:
    """The answer loss of the examples not flagged (as recorded; unchanged when nothing can be told apart)."""
    record, flags = comparison.answer_loss, comparison.overlap.get("flags")
    if record is None or not flags:
        return record
    kept = [e for e in record.examples if e.index < len(flags) and not flags[e.index]]
    if not kept or len(kept) == len(record.examples):
        return record
    return summarise(kept, planned=len(kept) + record.planned - record.n, base_seconds=record.base_seconds,
                     tuned_seconds=record.tuned_seconds)
