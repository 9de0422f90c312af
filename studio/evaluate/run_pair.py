"""Two runs side by side: each run's held-out scores, and how much better the second run's tuned answers are.

The difference is B's tuned model minus A's tuned model. When both runs were compared on the same held-out rows
(the same instruction, input and reference, in any order) it comes with the paired-bootstrap interval Compare uses
for base vs tuned; on different rows the corpus scores are still shown, with no interval, and the record says so.
Pure data (no torch), like the Comparison records it reads.
"""
from __future__ import annotations

from dataclasses import dataclass

from studio.evaluate.change import Change
from studio.evaluate.comparison import Comparison, ComparisonRow
from studio.evaluate.scoring import ExampleScore, Scores
from studio.evaluate.significance import paired_bootstrap

METRICS = ("bleu", "chrf", "rouge_l", "exact_match")


@dataclass
class RunPair:
    """Runs A and B compared: the change from A's tuned scores to B's, and which rows the two share."""

    a: Comparison
    b: Comparison
    changes: dict[str, Change]  # metric -> B tuned minus A tuned (exact match in percentage points)
    shared: int  # held-out rows both runs answered
    same_rows: bool  # both were compared on exactly the same rows (the intervals need it)

    @property
    def rows_note(self) -> str:
        """One line on which rows the scores come from."""
        if self.same_rows:
            return (f"Both runs were compared on the same {self.shared} held-out examples: the difference has a paired "
                    "95% interval.")
        return (f"The runs were compared on different held-out examples ({len(self.a.rows)} and {len(self.b.rows)}, "
                f"{self.shared} in common), so their scores are not directly comparable and the difference has no "
                "interval.")


def row_key(row: ComparisonRow) -> tuple[str, str, str]:
    """What identifies a held-out example across runs."""
    return row.instruction, row.input, row.reference


def _each(row: ComparisonRow) -> ExampleScore:
    return ExampleScore(bleu=row.tuned_bleu, chrf=row.tuned_chrf, exact=row.tuned_exact,
                        rouge_l=row.tuned_rouge_l or 0.0)


def _unpaired(a: Scores, b: Scores) -> dict[str, Change]:
    changes = {}
    for metric in METRICS:
        before, after = getattr(a, metric), getattr(b, metric)
        if before is not None and after is not None:
            scale = 100.0 if metric == "exact_match" else 1.0
            changes[metric] = Change(scale * before, scale * after, scale * (after - before))
    return changes


def pair_runs(a: Comparison, b: Comparison) -> RunPair:
    """The change from A's tuned answers to B's, paired with intervals when both answered the same rows."""
    by_key = {row_key(r): r for r in a.rows}
    keys_b = [row_key(r) for r in b.rows]
    shared = [k for k in keys_b if k in by_key]
    same = len(shared) == len(by_key) == len(b.rows) and len(set(keys_b)) == len(keys_b)
    if not same:
        return RunPair(a, b, _unpaired(a.tuned, b.tuned), len(shared), False)
    rows_a, rows_b = [by_key[k] for k in keys_b], b.rows
    changes = paired_bootstrap([r.reference for r in rows_b], [r.tuned for r in rows_a], [r.tuned for r in rows_b],
                               [_each(r) for r in rows_a], [_each(r) for r in rows_b])
    if a.tuned.rouge_l is None or b.tuned.rouge_l is None:  # an older comparison without ROUGE-L
        changes.pop("rouge_l", None)
    return RunPair(a, b, changes, len(shared), True)
