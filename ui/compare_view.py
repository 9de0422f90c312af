"""Pure renderers for the Compare tab: a comparison in, score cards / raw-answer HTML / the side-by-side table out."""
from __future__ import annotations

import html
from typing import Any

import pandas as pd

from studio.evaluate.comparison import Comparison, ComparisonRow
from studio.publish import marks, scorecard
from ui.theme import card, cards

COLUMNS = ["Instruction", "Reference", "Base answer", "Tuned answer", "BLEU base", "BLEU tuned", "Change"]


def _kind(verdict: str) -> str:
    return {"gain": "good", "loss": "bad"}.get(verdict, "")


def _metric_card(line: scorecard.MetricLine, big: bool = False) -> str:
    change = line.change
    kind = " ".join(filter(None, ["big wide" if big else "", _kind(change.verdict)]))
    badge = scorecard.verdict_text(change) if change.verdict != "no interval" else ""
    return card(line.label, line.after, scorecard.delta_text(change), kind, before=line.before, badge=badge)


def _judge_card(judge: dict[str, Any] | None) -> list[str]:
    """The judge's win rate as a card (none without a judge, or for one too inconsistent to trust)."""
    if not judge or not judge.get("trusted") or judge.get("win_rate") is None:
        return []
    ci = f"95% CI {judge['low']:.0%} to {judge['high']:.0%}, " if judge.get("low") is not None else ""
    return [card(f"Judge: tuned vs {'prompt-only baseline' if judge.get('opponent') == 'baseline' else 'base'}",
                 f"{judge['win_rate']:.0%}", f"{ci}{judge.get('pairs', 0)} pairs, {judge.get('ties', 0)} ties")]


def score_cards_html(cmp: Comparison, judge: dict[str, Any] | None = None) -> str:
    """The verdict sentence, a card per metric (the headline metric big, with its interval), per-example counts,
    the prompt-only baseline and the judge (when one ran), how answers were cut and the answer length with its
    reason; every figure over the rows the headline scores (`scorecard.headline_comparison`)."""
    lines, scored = scorecard.metric_lines(cmp), scorecard.headline_comparison(cmp)  # the headline metric first
    items = [_metric_card(line, big=i == 0) for i, line in enumerate(lines)]
    if scored.tally is not None:
        t = scored.tally
        items.append(card("Per example", f"{t.wins} · {t.ties} · {t.losses}",
                          "better · same · worse, by sentence BLEU"))
    if scored.answer_loss is not None:
        a = scored.answer_loss
        items.append(card("Per example (answer loss)", f"{a.better} · {a.same} · {a.worse}",
                          "better · same · worse, by the reference answers' loss"))
    if (base := scored.baseline) is not None and base.ran:  # could prompting alone do it?
        items.append(card(f"Prompting alone ({base.shots}-shot)", f"BLEU {base.scores.bleu:.1f}",
                          "the base model with training examples in front of each prompt"))
    items += _judge_card(judge)
    verdict = _kind(lines[0].change.verdict)
    notes = [marks.cut_note(cmp), marks.method_note(cmp), scorecard.baseline_sentence(cmp)]
    notes[-1] = notes[-1][:1].upper() + notes[-1][1:]
    return (f'<p class="compare-headline {verdict}">{html.escape(scorecard.headline(cmp, judge))}</p>'
            f"{cards(*items, min_px=170)}"
            f'<p class="cut-note">{html.escape(" ".join(filter(None, notes)))}</p>{answer_length_html(cmp)}')


def answer_length_html(cmp: Comparison) -> str:
    """The answer length both models answered under and why ('' for comparisons that did not record it)."""
    if cmp.answer_length_reason:
        text = cmp.answer_length_reason[0].upper() + cmp.answer_length_reason[1:]
    elif cmp.limit:
        text = f"Answers up to {cmp.limit} tokens (the reason was not recorded for this comparison)."
    else:
        return ""
    return f'<p class="cut-note answer-length">Answer length: {html.escape(text)}</p>'


def _task(row: ComparisonRow) -> str:
    return row.instruction + (f" Input: {row.input}" if row.input else "")


def ranked_rows(cmp: Comparison) -> list[ComparisonRow]:
    """Rows sorted by BLEU change, biggest gain first (the table's and the raw list's order)."""
    return sorted(cmp.rows, key=lambda r: r.delta_bleu, reverse=True)


def _with_mark(text: str, mark: str) -> str:
    return f"{text} [{mark}]" if mark else text


def _marked(cmp: Comparison, row: ComparisonRow, who: str) -> str:
    """The answer as scored, with '[cut at N tokens]' after it when it ran into the length limit."""
    return _with_mark(getattr(row, who), marks.cut_mark(cmp, row, who))


def columns(cmp: Comparison) -> list[str]:
    """The table's columns: COLUMNS, with the prompt-only baseline's answers after the tuned ones when it ran."""
    if cmp.baseline is None or not cmp.baseline.ran or len(cmp.baseline.rows) != len(cmp.rows):
        return COLUMNS
    return [*COLUMNS[:4], f"Prompting alone ({cmp.baseline.shots}-shot)", *COLUMNS[4:]]


def comparison_frame(cmp: Comparison) -> pd.DataFrame:
    """The side-by-side table of cut answers (marked where the length limit cut them; the prompt-only baseline's
    beside them when it ran) with sentence BLEU before, after and the change; a row whose prompt repeats a training
    prompt says so after its instruction."""
    names, index = columns(cmp), {id(row): i for i, row in enumerate(cmp.rows)}
    table = []
    for r in ranked_rows(cmp):
        answers = [_marked(cmp, r, "base"), _marked(cmp, r, "tuned")]
        if len(names) > len(COLUMNS):
            shot = cmp.baseline.rows[index[id(r)]]
            answers.append(_with_mark(shot.answer, marks.baseline_cut_mark(cmp, shot)))
        table.append([_with_mark(_task(r), marks.overlap_mark(cmp, r)), r.reference, *answers,
                      round(r.base_bleu, 1), round(r.tuned_bleu, 1), round(r.delta_bleu, 1)])
    return pd.DataFrame(table, columns=names)


def _raw_block(title: str, raw: str, ended: str) -> str:
    return (f'<div><div class="raw-title">{title} <span>{html.escape(ended)}</span></div>'
            f"<pre>{html.escape(raw) or '<em>(nothing)</em>'}</pre></div>")


def raw_answers_html(cmp: Comparison) -> str:
    """Every example as a closed <details>: the raw continuations both models wrote and how each answer ended."""
    if not any(r.base_raw or r.tuned_raw for r in cmp.rows):
        return '<p class="cut-note">This comparison was saved without raw continuations; compare again to see them.</p>'
    items = []
    for i, r in enumerate(ranked_rows(cmp), start=1):
        base, tuned = marks.ending(r.base, r.base_raw, cmp), marks.ending(r.tuned, r.tuned_raw, cmp)
        badges = "".join(f'<span class="raw-badge">{who}: {html.escape(how)}</span>'
                         for who, how in (("base", base), ("tuned", tuned)))
        items.append(f"<details><summary>{i}. {html.escape(_task(r))} {badges}</summary><div class=\"raw-pair\">"
                     f"{_raw_block('Base', r.base_raw, base)}{_raw_block('Tuned', r.tuned_raw, tuned)}</div>"
                     "</details>")
    return f'<div class="raw-list">{"".join(items)}</div>'


def _adapter_name(step: int | None) -> str:
    return f"step-{step} snapshot" if step else "final adapter"


def adapter_note_html(compared_step: int | None, current_step: int | None) -> str:
    """A warning when the saved comparison is of another adapter than the one the run now uses ('' otherwise)."""
    if compared_step == current_step:
        return ""
    return (f'<p class="studio-note">This comparison is of the run\'s {_adapter_name(compared_step)}; the run now '
            f"uses its {_adapter_name(current_step)}. Compare again to score it.</p>")
