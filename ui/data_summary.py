"""The Data tab's report on what loading did: the summary line, example rows per reason, the chat-template note,
and a training-subset size that fits a time budget at this machine's speed.

Pure functions of the loaded data (and, for the speed, of the runs folder and the model's config); the handlers in
`data_tab.py` call them.
"""
from __future__ import annotations

import html
from pathlib import Path

from studio.data.dataset import LoadedDataset
from studio.data.summary import LoadSummary, reason_label
from studio.data.templates import trains_every_turn
from studio.model.budget import fit_subset, training_speed
from studio.settings import StudioSettings
from ui.theme import duration

BUDGET_MINUTES = 10  # the time budget the subset suggestion starts from


def summary_markdown(loaded: LoadedDataset) -> str:
    """The detected shape and why, then the one-line load summary (bold when rows were repaired or skipped)."""
    s = loaded.summary
    head = f"**{loaded.title}** — detected shape **{loaded.shape.name}**: {loaded.shape.reason}"
    if s is None:
        return head
    line = s.line() if s.clean else f"**{s.line()}** Open *Rows repaired or skipped* below to see examples."
    return f"{head}\n\n{line}"


def problems_html(summary: LoadSummary | None) -> str:
    """Each repair/skip reason with its count and a few of its rows (number, what was wrong, the row itself)."""
    if summary is None or not summary.reasons():
        return "<p>Every row was kept as it was.</p>"
    parts = ['<div class="row-problems">']
    for key, kind, count, notes in summary.reasons():
        colour = "#92400e" if kind == "repaired" else "#b91c1c"
        parts.append(f'<h4 style="margin:10px 0 4px;color:{colour}">{html.escape(reason_label(key))}: '
                     f"{count:,} {kind}</h4><ul style='margin:0'>")
        for note in notes:
            parts.append(f"<li><b>Row {note.row}</b> {html.escape(note.detail)}<br>"
                         f'<code style="font-size:12px;white-space:pre-wrap">{html.escape(note.text)}</code></li>')
        parts.append("</ul>")
    parts.append("</div>")
    return "".join(parts)


def chat_note(loaded: LoadedDataset | None, template: str) -> str:
    """Which answers of the multi-turn chats the chosen template trains (empty when there are none)."""
    if loaded is None or not loaded.n_multi_turn:
        return ""
    chats = f"{loaded.n_multi_turn:,} of {len(loaded.examples):,} examples are multi-turn chats"
    if trains_every_turn(template):
        return f"{chats}; this chat template trains every assistant turn."
    return (f"ℹ {chats}; this template is single-turn, so their earlier turns are flattened into the prompt and only "
            "the last answer is trained (pick Chat, ChatML or Phi-3 to train every assistant turn).")


def lengths_note(found: list[int], n_train: int, limit: int, loaded: LoadedDataset | None, template: str) -> str:
    """How many of the sampled token lengths pass max length (or that all fit), then the chat-template note."""
    over = sum(n > limit for n in found)
    sampled = f"a seeded sample of {len(found):,}" if len(found) < n_train else f"all {len(found):,}"
    note = (f"⚠ {over} of {sampled} examples are longer than {limit} tokens and will be truncated."
            if over else f"{sampled[0].upper()}{sampled[1:]} examples fit in {limit} tokens (longest {max(found)}).")
    chats = chat_note(loaded, template)
    return f"{note}\n\n{chats}" if chats else note


def subset_suggestion(runs_root: Path, settings: StudioSettings, lengths: list[int], n_train: int, n_held_out: int,
                      budget_minutes: float) -> tuple[str, int | None]:
    """(a sentence, the suggested max_examples) for training within `budget_minutes` at this machine's speed.

    `lengths` are token lengths of a seeded sample of the training split; max_examples also covers the held-out
    rows, so the suggestion adds them to the training examples that fit.
    """
    if not lengths or n_train <= 0:
        return "", None
    speed = training_speed(runs_root, settings.model.model)
    if speed is None:
        return ("Train once on this machine to measure its speed; the studio then suggests a subset size that "
                "trains within your time budget."), None
    minutes = f"{budget_minutes:g} minute" + ("" if budget_minutes == 1 else "s")
    fit = fit_subset(speed, settings, lengths, n_train, budget_minutes * 60)
    tokens_per_second, source, epochs, fits = fit.tokens_per_second, fit.source, fit.epochs, fit.fits
    passes = "one epoch" if epochs == 1 else f"{epochs:g} epochs"
    head = (f"At {tokens_per_second:.0f} tokens/s ({source}), {passes} over the {n_train:,} training examples "
            f"{'takes' if epochs == 1 else 'take'} about {duration(fit.all_seconds)}")
    if settings.train.max_steps:
        return f"{head}; train.max_steps caps the run at {settings.train.max_steps} steps instead.", None
    if fits >= n_train:
        return f"{head}, within your {minutes}.", None
    return (f"{head}; about **{fits:,} examples** train in {minutes} (max examples "
            f"{fits + n_held_out:,} with the held-out rows)."), fits + n_held_out
