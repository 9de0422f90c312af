"""The Data tab's report on what loading did: the summary line, example rows per reason, the chat-template note,
and a training-subset size that fits a time budget at this machine's speed.

Pure functions of the loaded data (and, for the speed, of the runs folder and the model's config); the handlers in
`data_tab.py` call them.
"""
from __future__ import annotations

import functools
import html
import statistics
from pathlib import Path

from studio import runs
from studio.data.dataset import LoadedDataset
from studio.data.summary import LoadSummary, reason_label
from studio.data.templates import trains_every_turn
from studio.runs import RunFolder
from studio.settings import EMBEDDED_MODEL, StudioSettings
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


def measured_speed(runs_root: Path, model: str) -> tuple[float, str] | None:
    """(median training tokens/s, which run) of the newest run of `model` on this machine that logged a speed."""
    try:
        found = runs.list_runs(runs_root)
    except OSError:
        return None
    for info in found:
        if info.base_model != model:
            continue
        speeds = [r["tokens_per_second"] for r in RunFolder(info.path).read_metrics() if r.get("tokens_per_second")]
        if speeds:
            return float(statistics.median(speeds)), f"measured in run {info.run_id}"
    return None


@functools.lru_cache(maxsize=8)
def estimated_speed(model: str) -> tuple[float, str] | None:
    """Training tokens/s estimated from the model's FLOPs per token (its config, on the meta device: no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from studio.model.embedded import embedded_cache_dir, embedded_cache_ready
    from studio.model.info import estimate_epoch_seconds, model_info

    if model == EMBEDDED_MODEL:
        if not embedded_cache_ready():
            return None
        model = str(embedded_cache_dir())
    try:
        config = AutoConfig.from_pretrained(model, local_files_only=True)
        with torch.device("meta"):
            info = model_info(AutoModelForCausalLM.from_config(config))
    except Exception:  # noqa: BLE001 - no local config (or an exotic one): no estimate, the note says so
        return None
    return 1.0 / estimate_epoch_seconds(info, 1), "estimated from the model's FLOPs per token"


def subset_suggestion(runs_root: Path, settings: StudioSettings, lengths: list[int], n_train: int, n_held_out: int,
                      budget_minutes: float) -> tuple[str, int | None]:
    """(a sentence, the suggested max_examples) for training within `budget_minutes` at this machine's speed.

    `lengths` are token lengths of a seeded sample of the training split; max_examples also covers the held-out
    rows, so the suggestion adds them to the training examples that fit.
    """
    if not lengths or n_train <= 0:
        return "", None
    speed = measured_speed(runs_root, settings.model.model) or estimated_speed(settings.model.model)
    if speed is None:
        return ("Train once on this machine to measure its speed; the studio then suggests a subset size that "
                "trains within your time budget."), None
    tokens_per_second, source = speed
    minutes = f"{budget_minutes:g} minute" + ("" if budget_minutes == 1 else "s")
    per_example = statistics.fmean(min(n, settings.data.max_length) for n in lengths) / tokens_per_second
    epochs = settings.train.epochs
    fits = max(1, int(budget_minutes * 60 / (per_example * epochs)))
    passes = "one epoch" if epochs == 1 else f"{epochs:g} epochs"
    head = (f"At {tokens_per_second:.0f} tokens/s ({source}), {passes} over the {n_train:,} training examples "
            f"{'takes' if epochs == 1 else 'take'} about {duration(per_example * epochs * n_train)}")
    if settings.train.max_steps:
        return f"{head}; train.max_steps caps the run at {settings.train.max_steps} steps instead.", None
    if fits >= n_train:
        return f"{head}, within your {minutes}.", None
    return (f"{head}; about **{fits:,} examples** train in {minutes} (max examples "
            f"{fits + n_held_out:,} with the held-out rows)."), fits + n_held_out
