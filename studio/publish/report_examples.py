"""The report's examples, as HTML and as Markdown: the biggest gains, what got worse, and every compared example
(answers as scored, the raw continuations beside them). Pure, and escaping all user text like the rest of the
report (`studio.publish.report`)."""
from __future__ import annotations

from html import escape
from typing import Any

from studio.evaluate.comparison import Comparison, ComparisonRow
from studio.publish.markdown import md_table

SHOWN_EXAMPLES = 3


def _e(text: Any) -> str:
    return escape(str(text), quote=True)


def gains_and_losses(comparison: Comparison, k: int = SHOWN_EXAMPLES) -> tuple[list[ComparisonRow], ...]:
    """The k examples that gained most BLEU and the (up to k) that lost most."""
    ranked = sorted(comparison.rows, key=lambda r: r.delta_bleu, reverse=True)
    gains = [r for r in ranked if r.delta_bleu > 0][:k]
    losses = [r for r in reversed(ranked) if r.delta_bleu < 0][:k]
    return gains, losses


def _html_example(row: ComparisonRow) -> str:
    task = _e(row.instruction) + (f'<span class="input">{_e(row.input)}</span>' if row.input else "")
    answers = [("Reference", row.reference, "", "reference"), ("Base", row.base, f"BLEU {row.base_bleu:.1f}", "base"),
               ("Tuned", row.tuned, f"BLEU {row.tuned_bleu:.1f}", "tuned")]
    cells = "".join(f'<div class="answer {cls}"><span class="score">{_e(score)}</span><h3>{title}</h3>'
                    f"<pre>{_e(text) or '<em>(empty)</em>'}</pre></div>" for title, text, score, cls in answers)
    return (f'<div class="example"><p class="task">{task}</p><div class="answers">{cells}</div>'
            f"{_html_raw(row)}</div>")


def _html_raw(row: ComparisonRow) -> str:
    """Both raw continuations in a closed <details>: everything the models wrote before the cut was applied."""
    if not (row.base_raw or row.tuned_raw):
        return ""
    body = "".join(f'<div class="answer {cls}"><h3>{title}, raw</h3><pre>{_e(raw) or "<em>(empty)</em>"}</pre></div>'
                   for title, raw, cls in (("Base", row.base_raw, "base"), ("Tuned", row.tuned_raw, "tuned")))
    return f'<details class="raw"><summary>Raw continuations, before the cut</summary><div class="raws">{body}</div>' \
           "</details>"


def html_examples(title: str, rows: list[ComparisonRow], none: str) -> str:
    """A section of examples (reference, base and tuned side by side, the raw continuations folded), or `none`."""
    body = "".join(map(_html_example, rows)) or f'<p class="none">{_e(none)}</p>'
    return f"<section><h2>{_e(title)}</h2>{body}</section>"


def _html_answer(text: str, raw: str) -> str:
    """An answer as scored, with the raw continuation behind a small <details> when the cut removed something."""
    cut = raw and raw.strip() != text
    more = f'<details class="raw"><summary>raw</summary><pre>{_e(raw)}</pre></details>' if cut else ""
    return f"<pre>{_e(text)}</pre>{more}"


def html_all(comparison: Comparison) -> str:
    """Every compared example in one folded table, each answer with its raw continuation where the cut removed some."""
    head = ("<tr><th>#</th><th>Instruction</th><th>Reference</th><th>Base</th><th>Tuned</th>"
            '<th class="num">BLEU base</th><th class="num">BLEU tuned</th></tr>')
    body = "".join(
        f"<tr><td>{i}</td><td><pre>{_e(r.instruction)}{_e(chr(10) + r.input) if r.input else ''}</pre></td>"
        f"<td><pre>{_e(r.reference)}</pre></td><td>{_html_answer(r.base, r.base_raw)}</td>"
        f"<td>{_html_answer(r.tuned, r.tuned_raw)}</td>"
        f'<td class="num">{r.base_bleu:.1f}</td><td class="num">{r.tuned_bleu:.1f}</td></tr>'
        for i, r in enumerate(comparison.rows, start=1)
    )
    return (f'<section class="full"><details><summary>All {len(comparison.rows)} examples</summary>'
            f'<table class="all">{head}{body}</table></details></section>')


def md_examples(title: str, rows: list[ComparisonRow], none: str) -> list[str]:
    """A section of examples as Markdown tables (the raw continuations as their own rows), or `none`."""
    lines = [f"## {title}", ""]
    if not rows:
        return lines + [f"_{none}_", ""]
    for r in rows:
        task = r.instruction + (f"\n{r.input}" if r.input else "")
        table = [["Instruction", task, ""], ["Reference", r.reference, ""], ["Base", r.base, f"{r.base_bleu:.1f}"],
                 ["Tuned", r.tuned, f"{r.tuned_bleu:.1f}"]]
        if r.base_raw or r.tuned_raw:
            table += [["Base, raw", r.base_raw, ""], ["Tuned, raw", r.tuned_raw, ""]]
        lines += md_table(["", "Answer", "BLEU"], table) + [""]
    return lines


def md_all(comparison: Comparison) -> list[str]:
    """Every compared example in one table inside a closed <details>."""
    rows = [[i, r.instruction + (f"\n{r.input}" if r.input else ""), r.reference, r.base, r.tuned,
             f"{r.base_bleu:.1f}", f"{r.tuned_bleu:.1f}", r.base_raw, r.tuned_raw]
            for i, r in enumerate(comparison.rows, start=1)]
    header = ["#", "Instruction", "Reference", "Base", "Tuned", "BLEU base", "BLEU tuned", "Base, raw", "Tuned, raw"]
    return ([f"## All {len(comparison.rows)} examples", "", "<details><summary>Show the table</summary>", ""]
            + md_table(header, rows) + ["", "</details>", ""])
