"""Pure renderers for the Compare tab: a comparison in, score cards / raw-answer HTML / the side-by-side table out."""
from __future__ import annotations

import html

import pandas as pd

from studio.evaluate.comparison import Comparison, ComparisonRow
from studio.publish import scorecard
from ui.theme import card, cards

COLUMNS = ["Instruction", "Reference", "Base answer", "Tuned answer", "BLEU base", "BLEU tuned", "Change"]


def _kind(verdict: str) -> str:
    return {"gain": "good", "loss": "bad"}.get(verdict, "")


def _metric_card(line: scorecard.MetricLine, big: bool = False) -> str:
    change = line.change
    kind = " ".join(filter(None, ["big wide" if big else "", _kind(change.verdict)]))
    badge = scorecard.verdict_text(change) if change.verdict != "no interval" else ""
    return card(line.label, line.after, scorecard.delta_text(change), kind, before=line.before, badge=badge)


def score_cards_html(cmp: Comparison) -> str:
    """The verdict sentence, a card per metric (BLEU big, with its interval), win/tie/loss, how answers were cut."""
    lines = scorecard.metric_lines(cmp)
    items = [_metric_card(line, big=line.key == "bleu") for line in lines]
    if cmp.tally is not None:
        t = cmp.tally
        items.append(card("Per example", f"{t.wins} · {t.ties} · {t.losses}",
                          "better · same · worse, by sentence BLEU"))
    verdict = _kind(lines[0].change.verdict)
    return (f'<p class="compare-headline {verdict}">{html.escape(scorecard.headline(cmp))}</p>'
            f"{cards(*items, min_px=170)}"
            f'<p class="cut-note">{html.escape(scorecard.cut_note(cmp))} {html.escape(scorecard.method_note(cmp))}</p>')


def _task(row: ComparisonRow) -> str:
    return row.instruction + (f" Input: {row.input}" if row.input else "")


def ranked_rows(cmp: Comparison) -> list[ComparisonRow]:
    """Rows sorted by BLEU change, biggest gain first (the table's and the raw list's order)."""
    return sorted(cmp.rows, key=lambda r: r.delta_bleu, reverse=True)


def comparison_frame(cmp: Comparison) -> pd.DataFrame:
    """The side-by-side table of cut answers with sentence BLEU before, after and the change."""
    return pd.DataFrame([[_task(r), r.reference, r.base, r.tuned, round(r.base_bleu, 1), round(r.tuned_bleu, 1),
                          round(r.delta_bleu, 1)] for r in ranked_rows(cmp)], columns=COLUMNS)


def _raw_block(title: str, raw: str, ended: str) -> str:
    return (f'<div><div class="raw-title">{title} <span>{html.escape(ended)}</span></div>'
            f"<pre>{html.escape(raw) or '<em>(nothing)</em>'}</pre></div>")


def raw_answers_html(cmp: Comparison) -> str:
    """Every example as a closed <details>: the raw continuations both models wrote and how each answer ended."""
    if not any(r.base_raw or r.tuned_raw for r in cmp.rows):
        return '<p class="cut-note">This comparison was saved without raw continuations; compare again to see them.</p>'
    items = []
    for i, r in enumerate(ranked_rows(cmp), start=1):
        base, tuned = scorecard.ending(r.base, r.base_raw, cmp), scorecard.ending(r.tuned, r.tuned_raw, cmp)
        badges = "".join(f'<span class="raw-badge">{who}: {html.escape(how)}</span>'
                         for who, how in (("base", base), ("tuned", tuned)))
        items.append(f"<details><summary>{i}. {html.escape(_task(r))} {badges}</summary><div class=\"raw-pair\">"
                     f"{_raw_block('Base', r.base_raw, base)}{_raw_block('Tuned', r.tuned_raw, tuned)}</div>"
                     "</details>")
    return f'<div class="raw-list">{"".join(items)}</div>'
