"""The stakeholder report: a run in, one self-contained HTML page and a Markdown twin out.

`render_html` and `render_markdown` are pure; `write_report` is the one function that reads and writes files.
The HTML loads nothing from anywhere (inline CSS, the loss chart drawn as inline SVG) and escapes all user text.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from studio.errors import RunError
from studio.evaluate.comparison import Comparison, load_comparison
from studio.evaluate.judge_record import load_judge
from studio.evaluate.probe_record import ProbeResult, load_probe
from studio.publish import marks
from studio.publish import scorecard as sc
from studio.publish.markdown import cell, md_table
from studio.publish.probe_view import probe_html, probe_markdown
from studio.publish.report_examples import gains_and_losses, html_all, html_examples, md_all, md_examples
from studio.publish.report_style import CSS
from studio.publish.svg import Series, line_chart
from studio.runs import RunFolder, atomic_write, read_run

SECTIONS = (("lora", "LoRA"), ("train", "Training"), ("data", "Data"), ("generation", "Generation"))


# ---- shared content: the same facts feed the HTML and the Markdown ----

def _date(created: str) -> str:
    try:
        return datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return created or "unknown"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(default)"
    if isinstance(value, dict):
        return json.dumps(value) if value else "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value != "" else "(none)"


def settings_rows(settings: dict, comparison: Comparison) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section title, [(setting, value)]) for the hyperparameter tables; generation is what Compare used."""
    chosen = {**settings, "generation": comparison.generation or settings.get("generation", {})}
    out = []
    for key, title in SECTIONS:
        values = dict(chosen.get(key, {}))
        if key == "data" and values.get("template") != "custom":
            values.pop("custom_template", None)  # only meaningful for the custom template
        out.append((title, [(name, _value(v)) for name, v in values.items()]))
    return out


def loss_points(history: list[dict], key: str = "loss") -> list[tuple[float, float]]:
    """(step, value) of every record that logged `key`."""
    return [(float(r.get("step") or 0), float(r[key])) for r in history if r.get(key) is not None]


def _sampled(points: list[tuple[float, float]], n: int = 8) -> list[tuple[float, float]]:
    if len(points) <= n:
        return points
    picks = sorted({round(i * (len(points) - 1) / (n - 1)) for i in range(n)})
    return [points[i] for i in picks]


def _headline(comparison: Comparison) -> str:
    first = sc.metric_lines(comparison)[0]  # the headline metric (scorecard chooses it)
    return f"{first.label} {first.before} → {first.after}"


def _subline(comparison: Comparison) -> str:
    gen = comparison.generation
    decoding = "sampling" if gen.get("do_sample") else f"beam search ({gen['num_beams']})" \
        if gen.get("num_beams", 1) > 1 else "greedy"
    return (f"{decoding.capitalize()} decoding, up to {gen.get('max_new_tokens', '?')} new tokens, "
            f"template {comparison.template}")


def saved_judge(run_dir: Path, comparison: Comparison) -> dict[str, Any] | None:
    """The run's saved judging as the headline reads it (`scorecard.headline_judge`), or None: never judged, a
    judging of answers a newer comparison replaced, or a judge.json that cannot be read (the rest stands)."""
    judged, compared = RunFolder(run_dir).judge_file, RunFolder(run_dir).comparison_file
    if not judged.is_file() or (compared.is_file() and judged.stat().st_mtime < compared.stat().st_mtime):
        return None  # judge.json keeps row numbers, so it only speaks for the answers it read
    try:
        return sc.headline_judge(comparison, load_judge(run_dir))
    except RunError:
        return None


def _answer_notes(comparison: Comparison) -> list[str]:
    """Per-example answer loss, the answer length's reason and the prompt-only baseline, where recorded, over the
    rows the headline scores."""
    notes = []
    if (loss := sc.headline_comparison(comparison).answer_loss) is not None:
        notes.append(f"By answer loss: {loss.better} better, {loss.same} the same, {loss.worse} worse.")
    if reason := comparison.answer_length_reason:
        notes.append(reason[:1].upper() + reason[1:])
    if baseline := sc.baseline_sentence(comparison):  # could prompting alone do it?
        notes.append(baseline[:1].upper() + baseline[1:] + ("" if baseline.endswith(".") else "."))
    return notes


def _training_caption(run: dict, history: list[dict]) -> str:
    parts = []
    if run.get("final_loss") is not None:
        parts.append(f"final train loss {run['final_loss']:.3f}")
    if run.get("step"):
        parts.append(f"{run['step']} steps")
    if run.get("train_seconds"):
        parts.append(f"{run['train_seconds'] / 60:.1f} min of training")
    if run.get("threads"):
        parts.append(f"{run['threads']} CPU thread{'s' if run['threads'] != 1 else ''} ({run.get('thread_policy')})")
    return ", ".join(parts) or f"{len(history)} logged records"


# ---- HTML ----

def _e(text: Any) -> str:
    return escape(str(text), quote=True)


def _pill(change: float) -> str:
    kind = "up" if change > 0.05 else "down" if change < -0.05 else "flat"
    return f'<span class="pill {kind}">{change:+.1f} pts</span>'


def _html_header(run: dict, comparison: Comparison) -> str:
    meta = [("Run", run.get("run_id", "")), ("Base model", run.get("base_model", "")),
            ("Dataset", run.get("dataset", "")), ("Template", comparison.template or run.get("template", "")),
            ("Date", _date(run.get("created", ""))), ("Status", run.get("status", ""))]
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in meta)
    title = f"{run.get('base_model', 'Model')} tuned on {run.get('dataset', 'a dataset')}"
    return (f'<header class="top"><p class="eyebrow">Instruction-tuning report</p><h1>{_e(title)}</h1>'
            f'<dl class="meta">{items}</dl></header>')


def _html_card(line: sc.MetricLine) -> str:
    ci = sc.interval_text(line.change)
    verdict = f'<p class="ci">{_e(ci)} · {_e(sc.verdict_text(line.change))}</p>' if ci else ""
    return (f'<div class="card"><div class="label">{_e(line.label)}</div><div class="value"><span class="before">'
            f'{_e(line.before)}</span> <span class="arrow">→</span> {_e(line.after)}</div>{_pill(line.change.delta)}'
            f'{verdict}<p class="note">{_e(sc.NOTES[line.key])}</p></div>')


def _judge_note(judge: dict[str, Any] | None) -> str:
    """'Judge: tuned won 6, 1 tie, 1 lost of 8 pairs against the base model.' ('' without a trusted judge)."""
    if not judge or not judge.get("trusted") or not judge.get("pairs"):
        return ""
    against = "the prompt-only baseline" if judge.get("opponent") == "baseline" else "the base model"
    return (f"Judge: tuned won {judge.get('wins', 0)}, {judge.get('ties', 0)} ties, {judge.get('losses', 0)} lost "
            f"of {judge['pairs']} pairs against {against}.")


def _html_scores(run: dict, comparison: Comparison, judge: dict[str, Any] | None = None) -> str:
    lines = sc.metric_lines(comparison)
    first, tally = lines[0], sc.tally_text(comparison)  # the headline metric first
    subs = [sc.headline(comparison, judge), f"Per example: {tally}." if tally else "", *_answer_notes(comparison),
            _judge_note(judge),
            _subline(comparison), marks.cut_note(comparison)]
    return (f'<section class="headline"><p class="big"><span class="before">{_e(first.label)} {_e(first.before)}'
            f'</span> → {_e(first.after)}</p><p class="verdict">{_e(sc.change_text(first.change))}</p>'
            + "".join(f'<p class="sub">{_e(sub)}</p>' for sub in subs if sub)
            + f'</section><section class="cards">{"".join(map(_html_card, lines))}</section>')


def _html_loss(run: dict, history: list[dict]) -> str:
    chart = line_chart([Series("train loss", loss_points(history), "#4f46e5"),
                        Series("eval loss", loss_points(history, "eval_loss"), "#f59e0b", dots_only=True)],
                       x_label="step", y_label="loss", empty="No loss logged yet")
    caption = _e(_training_caption(run, history))
    return f'<section><h2>Training loss</h2>{chart}<p class="caption">{caption}</p></section>'


def _html_table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _html_settings(settings: dict, comparison: Comparison) -> str:
    blocks = "".join(f"<div><h3>{_e(title)}</h3>{_html_table(rows)}</div>"
                     for title, rows in settings_rows(settings, comparison))
    return f'<section><h2>Hyperparameters</h2><div class="settings">{blocks}</div></section>'


def render_html(run: dict, settings: dict, history: list[dict], comparison: Comparison,
                probe: ProbeResult | None = None, judge: dict[str, Any] | None = None) -> str:
    """The whole report as one self-contained HTML page (inline CSS and SVG, no external resources); `judge` is a
    judging's summary (`saved_judge`), whose win rate follows the headline."""
    gains, losses = gains_and_losses(comparison)
    seconds = comparison.base_seconds + comparison.tuned_seconds
    parts = [
        _html_header(run, comparison), _html_scores(run, comparison, judge), probe_html(probe) if probe else "",
        _html_loss(run, history),
        html_examples("Biggest gains", gains, "No example improved."),
        html_examples("Got worse", losses, "No example got worse."),
        _html_settings(settings, comparison), html_all(comparison),
        f"<footer>Instruction-Tuning Studio · answers generated in {seconds:.0f} s · "
        f"scores by the studio's evaluate metric (BLEU and chrF by SacreBLEU) · "
        f"{_e(marks.method_note(comparison))}</footer>",
    ]
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Instruction-tuning report · {_e(run.get('run_id', ''))}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>")


# ---- Markdown ----

def _loss_table(history: list[dict]) -> list[list[str]]:
    """A few evenly spaced train-loss steps plus every eval step, as table rows."""
    train, evals = dict(_sampled(loss_points(history))), dict(loss_points(history, "eval_loss"))
    return [[f"{step:g}", f"{train[step]:.4f}" if step in train else "", f"{evals[step]:.4f}" if step in evals else ""]
            for step in sorted(train.keys() | evals.keys())]


def _md_summary(run: dict, history: list[dict], comparison: Comparison, judge: dict[str, Any] | None) -> list[str]:
    title = f"{run.get('base_model', 'Model')} tuned on {run.get('dataset', 'a dataset')}"
    facts = [f"Run `{run.get('run_id', '')}`", f"template {cell(comparison.template)}",
             _date(run.get("created", "")), f"status {run.get('status', '')}"]
    cards = [m.cells() for m in sc.metric_lines(comparison)]
    loss = _loss_table(history)
    extra = [line for line in (sc.tally_text(comparison), *_answer_notes(comparison), _judge_note(judge),
                               marks.cut_note(comparison), marks.method_note(comparison)) if line]
    return ([f"# {cell(title)}", "", " · ".join(facts), "", f"## {_headline(comparison)}", "",
             f"**{sc.headline(comparison, judge)}**", "", _subline(comparison), ""]
            + md_table(sc.CELLS_HEADER, cards)
            + [""] + [f"- {cell(line)}" for line in extra]
            + ["", "## Training loss", "", _training_caption(run, history), ""]
            + (md_table(["Step", "Train loss", "Eval loss"], loss) if loss else ["_No loss logged yet._"]) + [""])


def render_markdown(run: dict, settings: dict, history: list[dict], comparison: Comparison,
                    probe: ProbeResult | None = None, judge: dict[str, Any] | None = None) -> str:
    """The same report as Markdown: tables throughout, the loss curve as a few sampled steps."""
    gains, losses = gains_and_losses(comparison)
    lines = _md_summary(run, history, comparison, judge) + (probe_markdown(probe, md_table) if probe else [])
    lines += md_examples("Biggest gains", gains, "No example improved.")
    lines += md_examples("Got worse", losses, "No example got worse.")
    lines += ["## Hyperparameters", ""]
    for section, rows in settings_rows(settings, comparison):
        lines += [f"### {section}", ""] + md_table(["Setting", "Value"], [list(r) for r in rows]) + [""]
    return "\n".join(lines + md_all(comparison))


# ---- files ----

def write_report(run_dir: Path) -> tuple[Path, Path]:
    """Render the HTML and Markdown report into the run folder from its saved files; returns both paths."""
    info = read_run(run_dir.parent, run_dir.name)  # first: a deleted run says so, not "compare first"
    comparison = load_comparison(run_dir)
    if comparison is None:
        raise RunError("Run the comparison first; this run has no before/after results yet.")
    run = {k: v for k, v in dataclasses.asdict(info).items() if k != "path"}
    folder = RunFolder(run_dir)
    settings, history, probe = folder.read_settings().to_dict(), folder.read_metrics(), load_probe(run_dir)
    judge = saved_judge(run_dir, comparison)
    atomic_write(folder.report_html, render_html(run, settings, history, comparison, probe, judge))
    atomic_write(folder.report_md, render_markdown(run, settings, history, comparison, probe, judge))
    return folder.report_html, folder.report_md
