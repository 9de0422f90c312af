"""Compare tab: the same held-out prompts answered with the adapter off (base) and on (tuned), scored with BLEU."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.data.dataset import dataset_label
from studio.errors import RunError
from studio.evaluate.before_after import answer_both
from studio.evaluate.comparison import Comparison, load_comparison
from studio.pipeline import compare_run
from studio.publish.plots import delta_figure, scores_figure
from studio.publish.report import write_report
from studio.runs import RunFolder, list_runs, read_run
from ui.compare_view import COLUMNS, comparison_frame, raw_answers_html, score_cards_html
from ui.context import Context
from ui.errors import guarded
from ui.probe_panel import create_probe_panel, wire_probe_panel
from ui.state import SessionState, owner_of

PROGRESS = gr.Progress()  # Gradio recognises a handler parameter defaulting to a Progress and fills it per call
GEN_FIELDS = ("max_new_tokens", "num_beams", "batch_size", "do_sample", "temperature", "top_p", "repetition_penalty",
              "seed")


@dataclass
class CompareTab:
    """The Compare tab's components that handlers read or write."""

    run: Any
    refresh: Any
    compare: Any
    scores: Any
    scores_plot: Any
    delta_plot: Any
    table: Any
    raw: Any
    report: Any
    instruction: Any
    input: Any
    ask: Any
    base: Any
    tuned: Any
    probe: Any = None


def create_compare_tab(ctx: Context) -> CompareTab:
    """Lay out the Compare tab and register the generation widgets on the form."""
    with gr.Row():
        run = gr.Dropdown([], label="Run (with a trained adapter)", scale=5, allow_custom_value=True)
        refresh = gr.Button("↻ Refresh runs", size="sm", scale=1)
    with gr.Accordion("Generation settings", open=False):
        for names in (GEN_FIELDS[:4], GEN_FIELDS[4:]):
            with gr.Row():
                for name in names:
                    ctx.form.add("generation", name)
    compare = gr.Button("Compare on the test split", variant="primary")
    scores = gr.HTML()
    with gr.Row():
        scores_plot = gr.Plot(label="Scores before and after")
        delta_plot = gr.Plot(label="Per-example BLEU change")
    table = gr.Dataframe(headers=COLUMNS, label="Side by side (sorted by BLEU change; click a header to re-sort)",
                         datatype=["str"] * 4 + ["number"] * 3, wrap=True, max_height=520, interactive=False,
                         column_widths=["22%", "14%", "20%", "20%", "8%", "8%", "8%"])
    with gr.Accordion("Raw answers, before the cut (everything each model wrote, special tokens shown)", open=False):
        raw = gr.HTML()
    report = gr.File(label="Stakeholder report (HTML and Markdown)", file_count="multiple", interactive=False)
    probe = create_probe_panel(ctx)
    gr.Markdown("### Ask both models")
    with gr.Row():
        instruction = gr.Textbox("", label="Instruction", lines=2, scale=3)
        input_box = gr.Textbox("", label="Input (optional)", lines=2, scale=2)
    ask = gr.Button("Answer with both")
    with gr.Row():
        base = gr.Textbox(label="Base", lines=5, interactive=False, elem_classes="answer-box")
        tuned = gr.Textbox(label="Tuned", lines=5, interactive=False, elem_classes="answer-box")
    return CompareTab(run, refresh, compare, scores, scores_plot, delta_plot, table, raw, report, instruction,
                      input_box, ask, base, tuned, probe)


def run_choices(root: Path) -> list[tuple[str, str]]:
    """(label, run id) of every run with a saved adapter, newest first."""
    return [(f"{r.run_id} · {dataset_label(r.dataset)} · {r.status}", r.run_id)
            for r in list_runs(root) if r.has_adapter]


def run_dropdown(root: Path, preferred: str = "") -> Any:
    """Dropdown update listing runs with adapters, selecting `preferred` (else the newest)."""
    choices = run_choices(root)
    ids = [i for _, i in choices]
    return gr.update(choices=choices, value=preferred if preferred in ids else (ids[0] if ids else None))


def comparison_view(cmp: Comparison, run_dir: Path) -> tuple:
    """(score cards, scores figure, delta figure, table, raw answers, report files) for a comparison."""
    folder = RunFolder(run_dir)
    reports = [str(p) for p in (folder.report_html, folder.report_md) if p.is_file()]
    if not reports:
        reports = [str(p) for p in write_report(run_dir)]
    return (score_cards_html(cmp), scores_figure(cmp), delta_figure(cmp), comparison_frame(cmp),
            raw_answers_html(cmp), reports)


EMPTY_VIEW = ("", None, None, pd.DataFrame(columns=COLUMNS), "", None)


def wire_compare_tab(ctx: Context, tab: CompareTab) -> None:
    """Connect run choice, compare, and the free prompt box."""
    state, services, gen = ctx.state, ctx.services, ctx.form.kwargs("generation")

    def run_model(state: SessionState, run_id: str | None, token: str | None, request: gr.Request | None) -> Any:
        run_id = run_id or state.run_id  # API clients may leave it out: their latest run
        if not run_id:
            raise RunError("Choose a run with a trained adapter first (train one on the Train tab).")
        return services.run_model(run_id, services.jobs.get(owner_of(state, request)), token or None)

    @guarded
    def refresh(state: SessionState) -> Any:
        """Runs with adapters; the visitor's latest run is selected when it has one."""
        return run_dropdown(services.runs_root, state.run_id)

    @guarded
    def saved(run_id: str | None = None) -> tuple:
        """The run's saved comparison, if it has one."""
        if not run_id:
            return EMPTY_VIEW
        info = read_run(services.runs_root, run_id)
        cmp = load_comparison(info.path)
        return comparison_view(cmp, info.path) if cmp else EMPTY_VIEW

    @guarded
    def compare(state: SessionState, run_id: str | None = None, token: str | None = None,
                request: gr.Request = None,
                progress: gr.Progress = PROGRESS, **values: Any) -> tuple:
        """Answer the run's test split with base and tuned weights; BLEU before/after, table and report."""
        rm = run_model(state, run_id, token, request)
        settings = ctx.form.to_settings(values)
        progress(0, desc="Loading the models")

        def step(which: str, done: int, total: int) -> None:
            progress((done, total), desc=f"{which.capitalize()} model answering", unit="examples")

        cmp = compare_run(rm, settings.generation, limit=rm.settings.data.max_test_examples, progress=step)
        return comparison_view(cmp, rm.run_dir)

    @guarded
    def ask(state: SessionState, run_id: str | None = None, instruction: str = "", input: str = "",
            token: str | None = None, request: gr.Request = None, **values: Any) -> tuple:
        """One free instruction answered by the base model (adapter disabled) and by the tuned model."""
        rm = run_model(state, run_id, token, request)
        settings = ctx.form.to_settings(values)
        base, tuned = answer_both(rm.model, rm.tokenizer, rm.template, instruction, input, settings.generation)
        return gr.update(value=base, label=rm.base_label), gr.update(value=tuned, label=rm.tuned_label)

    view = [tab.scores, tab.scores_plot, tab.delta_plot, tab.table, tab.raw, tab.report]
    tab.refresh.click(refresh, state, tab.run, api_name="list_adapters")
    ctx.tab_blocks["compare"].select(refresh, state, tab.run, api_visibility="private")
    tab.run.change(saved, tab.run, view, api_name="saved_comparison")
    # One generation at a time across visitors: the cached model's adapter is switched off and on while answering.
    tab.compare.click(compare, [state, tab.run, ctx.token], view, inputs_kwargs=gen, api_name="compare",
                      concurrency_id="generate", concurrency_limit=1, show_progress_on=tab.scores)
    tab.ask.click(ask, [state, tab.run, tab.instruction, tab.input, ctx.token], [tab.base, tab.tuned],
                  inputs_kwargs=gen, api_name="ask", concurrency_id="generate", concurrency_limit=1)
    wire_probe_panel(ctx, tab, tab.probe)
