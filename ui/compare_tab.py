"""Compare tab: the same held-out prompts answered with the adapter off (base) and on (tuned), scored with BLEU."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.data.dataset import dataset_label
from studio.errors import RunError
from studio.evaluate.before_after import NothingCompared
from studio.evaluate.chat import ask_both
from studio.evaluate.comparison import Comparison, load_comparison
from studio.evaluate.lengths import LONG_ANSWER_TOKENS, LOOP_PENALTY, sized_to_references
from studio.model.threads import on_own_thread
from studio.pipeline import compare_run, stopped_note
from studio.publish.plots import delta_figure, scores_figure
from studio.publish.report import saved_judge, write_report
from studio.runs import RunFolder, list_runs, read_run
from ui.compare_view import COLUMNS, adapter_note_html, comparison_frame, raw_answers_html, score_cards_html
from ui.context import Context
from ui.errors import guarded
from ui.judge_panel import create_judge_panel, wire_judge_panel
from ui.notices import NO_RUN_TO_COMPARE, NOT_COMPARED, empty_html
from ui.probe_panel import create_probe_panel, wire_probe_panel
from ui.state import SessionState, owner_of
from ui.stops import wire_stop
from ui.timeline_panel import create_timeline_panel, wire_timeline_panel

PROGRESS = gr.Progress()  # Gradio recognises a handler parameter defaulting to a Progress and fills it per call
# Generation settings in rows: answer length, the loop guard, what Compare adds (baseline, overlap), decoding.
GEN_ROWS = (("max_new_tokens", "max_new_tokens_auto", "answer_budget_seconds"),
            ("repetition_penalty", "repetition_penalty_auto"),
            ("baseline_shots", "baseline_budget_seconds", "include_overlap", "answer_loss_precision"),
            ("num_beams", "batch_size", "do_sample", "temperature", "top_p", "seed"))
GEN_FIELDS = tuple(name for row in GEN_ROWS for name in row)
GEN_LABELS = {"max_new_tokens_auto": "Fit to the data", "answer_budget_seconds": "Answer time budget (s)",
              "repetition_penalty_auto": "Loop guard", "baseline_shots": "Prompt-only baseline (shots)",
              "baseline_budget_seconds": "Baseline time budget (s)", "answer_loss_precision": "Answer loss arithmetic"}
LENGTH_NOTE = ("With *fit to the data* on, Compare sizes the answers to the run's held-out references and says why "
               "under the scores; the built-in word tasks keep their short answers. The *loop guard* gives answers "
               f"over {LONG_ANSWER_TOKENS} tokens a repetition penalty of {LOOP_PENALTY:g}: a small model decoding "
               "greedily otherwise tends to write one sentence again and again. The prompt-only baseline (the "
               "base model with a few training examples before each prompt) runs when it fits its time budget; "
               "0 shots turns it off. The answer loss reads with a bf16 copy of the weights where the CPU "
               "multiplies bf16 natively (*auto*; about twice as fast, each example within about 0.02 nats of fp32); "
               "the answers always come from the model's own.")


@dataclass
class CompareTab:
    """The Compare tab's components that handlers read or write."""

    run: Any
    refresh: Any
    compare: Any
    stop: Any
    scores: Any
    scores_plot: Any
    delta_plot: Any
    table: Any
    raw: Any
    report: Any
    instruction: Any
    input: Any
    ask: Any
    stop_ask: Any
    base: Any
    tuned: Any
    probe: Any = None
    timeline: Any = None
    judge: Any = None


def create_compare_tab(ctx: Context) -> CompareTab:
    """Lay out the Compare tab and register the generation widgets on the form."""
    with gr.Row():
        run = gr.Dropdown([], label="Run (with a trained adapter)", scale=5, allow_custom_value=True)
        refresh = gr.Button("↻ Refresh runs", size="sm", scale=1)
    with gr.Accordion("Generation settings", open=False, elem_classes="studio-settings"):
        for names in GEN_ROWS:
            with gr.Row():
                for name in names:
                    ctx.form.add("generation", name, **({"label": GEN_LABELS[name]} if name in GEN_LABELS else {}))
        gr.Markdown(LENGTH_NOTE)
    with gr.Row():
        compare = gr.Button("Compare on the test split", variant="primary", scale=4)
        stop = gr.Button("Stop (keeps the examples answered)", variant="stop", scale=1)
    scores = gr.HTML(empty_html(NO_RUN_TO_COMPARE))
    with gr.Row():
        scores_plot = gr.Plot(label="Scores before and after")
        delta_plot = gr.Plot(label="Per-example BLEU change")
    table = gr.Dataframe(headers=COLUMNS, label="Side by side (sorted by BLEU change; click a header to re-sort)",
                         # One type for every column: a prompt-only baseline adds a text column before the numbers.
                         datatype="str", wrap=True, max_height=520, interactive=False,
                         column_widths=["22%", "14%", "20%", "20%", "8%", "8%", "8%"])
    with gr.Accordion("Raw answers, before the cut (everything each model wrote, special tokens shown)", open=False):
        raw = gr.HTML()
    report = gr.File(label="Stakeholder report (HTML and Markdown)", file_count="multiple", interactive=False)
    probe = create_probe_panel(ctx)
    judge = create_judge_panel(ctx)
    gr.Markdown("### Ask both models")
    with gr.Row():
        instruction = gr.Textbox("", label="Instruction", lines=2, scale=3)
        input_box = gr.Textbox("", label="Input (optional)", lines=2, scale=2)
    with gr.Row():
        ask = gr.Button("Answer with both", scale=4)
        stop_ask = gr.Button("Stop", variant="stop", scale=1)
    with gr.Row():
        base = gr.Textbox(label="Base", lines=5, interactive=False, elem_classes="answer-box")
        tuned = gr.Textbox(label="Tuned", lines=5, interactive=False, elem_classes="answer-box")
    timeline = create_timeline_panel(ctx)
    return CompareTab(run, refresh, compare, stop, scores, scores_plot, delta_plot, table, raw, report, instruction,
                      input_box, ask, stop_ask, base, tuned, probe, timeline, judge)


def run_choices(root: Path) -> list[tuple[str, str]]:
    """(label, run id) of every run with a saved adapter, newest first."""
    return [(f"{r.run_id} · {dataset_label(r.dataset)} · {r.status}", r.run_id)
            for r in list_runs(root) if r.has_adapter]


def run_dropdown(root: Path, preferred: str = "") -> Any:
    """Dropdown update listing runs with adapters, selecting `preferred` (else the newest)."""
    choices = run_choices(root)
    ids = [i for _, i in choices]
    return gr.update(choices=choices, value=preferred if preferred in ids else (ids[0] if ids else None))


def report_files(run_dir: Path) -> list[str]:
    """The run's HTML and Markdown reports, written now if the run has none yet."""
    folder = RunFolder(run_dir)
    reports = [str(p) for p in (folder.report_html, folder.report_md) if p.is_file()]
    return reports or [str(p) for p in write_report(run_dir)]


class CompareHandlers:
    """The Compare tab's handlers: widget values -> settings -> `studio.pipeline`, answered as {component: value}."""

    def __init__(self, ctx: Context, tab: CompareTab) -> None:
        self.ctx, self.tab, self.services = ctx, tab, ctx.services

    def view(self, cmp: Comparison, run_dir: Path) -> dict:
        """Score cards, scores figure, delta figure, table, raw answers and report files for a comparison."""
        tab = self.tab
        in_use = (read_run(run_dir.parent, run_dir.name).adapter_choice or {}).get("step")
        judge = saved_judge(run_dir, cmp)  # a judging's win rate joins the headline
        return {tab.scores: adapter_note_html(cmp.adapter_step, in_use) + score_cards_html(cmp, judge),
                tab.scores_plot: scores_figure(cmp), tab.delta_plot: delta_figure(cmp),
                tab.table: comparison_frame(cmp), tab.raw: raw_answers_html(cmp), tab.report: report_files(run_dir)}

    def empty_view(self, message: tuple[str, str] = NO_RUN_TO_COMPARE) -> dict:
        """Nothing compared: the empty state saying what to do next in place of the score cards."""
        tab = self.tab
        return {tab.scores: empty_html(message), tab.scores_plot: None, tab.delta_plot: None,
                tab.table: pd.DataFrame(columns=COLUMNS), tab.raw: "", tab.report: None}

    def run_model(self, state: SessionState, run_id: str | None, token: str | None, request: gr.Request | None) -> Any:
        """The run's base model with its adapter (cached); API clients may leave the run out: their latest."""
        run_id = run_id or state.run_id
        if not run_id:
            raise RunError("Choose a run with a trained adapter first (train one on the Train tab).")
        return self.services.run_model(run_id, self.services.jobs.get(owner_of(state, request)), token or None)

    @guarded
    def refresh(self, state: SessionState) -> Any:
        """Runs with adapters; the visitor's latest run is selected when it has one."""
        return run_dropdown(self.services.runs_root, state.run_id)

    @guarded
    def saved(self, run_id: str | None = None) -> dict:
        """The run's saved comparison, if it has one."""
        if not run_id:
            return self.empty_view()
        info = read_run(self.services.runs_root, run_id)
        cmp = load_comparison(info.path)
        return self.view(cmp, info.path) if cmp else self.empty_view(NOT_COMPARED)

    @guarded
    def compare(self, state: SessionState, run_id: str | None = None, token: str | None = None,
                request: gr.Request = None, progress: gr.Progress = PROGRESS, **values: Any) -> Any:
        """Answer the run's test split with base and tuned weights; BLEU before/after, table and report."""
        rm = self.run_model(state, run_id, token, request)
        settings = self.ctx.form.to_settings(values)
        progress(0, desc="Loading the models")

        def step(which: str, done: int, total: int) -> None:
            progress((done, total), desc=f"{which.capitalize()} model answering", unit="examples")

        def scoring(which: str, done: int, total: int) -> None:
            progress((done, total), desc=f"Answer loss: the {which} model reading the references", unit="examples")

        stop = self.services.stops.start(owner_of(state, request), "compare")
        try:
            # Its own thread, which ends with it: a handler thread the server reuses would otherwise keep its
            # OpenMP workers and slow a training run started after it (studio/model/threads.py).
            cmp = on_own_thread(compare_run, rm, settings.generation, limit=rm.settings.data.max_test_examples,
                                progress=step, should_stop=stop.is_set, loss_progress=scoring)
        except NothingCompared as exc:
            gr.Info(str(exc))
            return gr.skip()  # the page keeps what it showed
        if cmp.partial:
            gr.Info(stopped_note(cmp, rm.run_dir))
        return self.view(cmp, rm.run_dir)

    @guarded
    def ask(self, state: SessionState, run_id: str | None = None, instruction: str = "", input: str = "",
            token: str | None = None, request: gr.Request = None, **values: Any) -> Iterator[dict]:
        """One free instruction answered by the base model (adapter disabled), then the tuned one, streamed."""
        rm = self.run_model(state, run_id, token, request)
        settings = self.ctx.form.to_settings(values)
        stop = self.services.stops.start(owner_of(state, request), "ask")
        labels, texts = {"base": rm.base_label, "tuned": rm.tuned_label}, {"base": "", "tuned": ""}
        gen, _ = sized_to_references(settings.generation, rm.reference_lengths())  # as the Chat sizes its answers
        for who, reply in ask_both(rm.model, rm.tokenizer, rm.template, instruction, input, gen, stop.is_set):
            texts[who] = reply.text
            if reply.ending == "stopped":
                labels[who] += " · stopped"
            yield {self.tab.base: gr.update(value=texts["base"], label=labels["base"]),
                   self.tab.tuned: gr.update(value=texts["tuned"], label=labels["tuned"])}


def wire_compare_tab(ctx: Context, tab: CompareTab) -> None:
    """Connect run choice, compare, and the free prompt box."""
    state, gen, on = ctx.state, ctx.form.kwargs("generation"), CompareHandlers(ctx, tab)
    refresh = on.refresh  # bound once: Gradio groups events under one concurrency limit by their function's id
    view = [tab.scores, tab.scores_plot, tab.delta_plot, tab.table, tab.raw, tab.report]
    tab.refresh.click(refresh, state, tab.run, api_name="list_adapters")
    ctx.tab_blocks["compare"].select(refresh, state, tab.run, api_visibility="private")
    tab.run.change(on.saved, tab.run, view, api_name="saved_comparison")
    # One generation at a time across visitors: the cached model's adapter is switched off and on while answering.
    tab.compare.click(on.compare, [state, tab.run, ctx.token], view, inputs_kwargs=gen, api_name="compare",
                      concurrency_id="generate", concurrency_limit=1, show_progress_on=tab.scores)
    wire_stop(ctx, tab.stop, "compare", "the comparison after the current batch", "stop_compare")
    tab.ask.click(on.ask, [state, tab.run, tab.instruction, tab.input, ctx.token], [tab.base, tab.tuned],
                  inputs_kwargs=gen, api_name="ask", concurrency_id="generate", concurrency_limit=1)
    wire_probe_panel(ctx, tab, tab.probe)
    judged = wire_judge_panel(ctx, tab.judge, tab.run)
    judged.success(on.saved, tab.run, view, api_visibility="private")  # the headline now carries the judge
    wire_stop(ctx, tab.stop_ask, "ask", "the answer", "stop_ask")
    wire_timeline_panel(ctx, tab.timeline, tab.run)
