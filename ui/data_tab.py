"""Data tab: pick a source, check the detected shape and mapping, filter and split, preview the template."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.data.columns import fix_for_ui
from studio.data.formatting import seeded_sample, token_lengths
from studio.data.preview import preview, preview_html
from studio.data.samples import SAMPLES
from studio.data.templates import template_choices
from studio.errors import DataError, ShapeError, StudioError, TruncatedFileError
from studio.publish.plots import length_histogram
from ui import data_steps as steps
from ui import data_summary as report
from ui.context import Context
from ui.data_steps import ROLES, SOURCES
from ui.errors import guarded
from ui.state import SessionState

# Token lengths come from a seeded random sample of this many training examples (the histogram stays instant).
LENGTH_SAMPLE = 2000
FILTERS = ("drop_with_input", "drop_empty", "dedupe", "shuffle", "seed", "max_examples",
           "test_fraction", "validation_fraction", "max_test_examples")


@dataclass
class DataTab:
    """The Data tab's components that handlers read or write."""

    source: Any
    sample: Any
    sample_info: Any
    upload: Any
    hub_id: Any
    load: Any
    keep: Any
    shape: Any
    problems_box: Any
    problems: Any
    mapping_box: Any
    mapping: dict
    remap: Any
    counts: Any
    index: Any
    prev: Any
    next: Any
    preview: Any
    histogram: Any
    lengths_note: Any
    budget: Any
    suggestion: Any
    suggested: Any
    use_suggested: Any
    table: Any


def sample_markdown(name: str) -> str:
    """The chosen sample's title and description."""
    sample = SAMPLES.get(name)
    return f"**{sample.title}.** {sample.description}" if sample else ""


def create_data_tab(ctx: Context) -> DataTab:
    """Lay out the Data tab and register its settings widgets on the form."""
    form, first = ctx.form, next(iter(SAMPLES), None)
    with gr.Row():
        with gr.Column(scale=5):
            source = gr.Radio(SOURCES, value=SOURCES[0], label="Source")
            sample = gr.Dropdown([(s.title, n) for n, s in SAMPLES.items()], value=first, label="Built-in sample")
            sample_info = gr.Markdown(sample_markdown(first))
            # No file_types filter: the library's own sentence names the supported formats more clearly.
            upload = gr.File(label="JSON, JSONL, CSV, TSV or Parquet file (also .gz, .bz2, .xz, .zst or .zip)",
                             visible=False, elem_id="data-upload")
            hub_id = gr.Textbox("", label="Hub dataset id", placeholder="org/name", visible=False)
            form.add("data", "hub_split", visible=False)
            with gr.Row(elem_classes="studio-settings"):
                form.add("data", "strict")
                form.add("data", "keep_truncated")
            load = gr.Button("Load data", variant="primary")
            keep = gr.Button("Keep the complete records", visible=False, elem_id="keep-truncated")
            shape = gr.Markdown(elem_id="data-summary")
            with gr.Accordion("Rows repaired or skipped (examples of each reason)", open=False, visible=False,
                              elem_id="row-problems") as problems_box:
                problems = gr.HTML()
            with gr.Accordion("Column mapping (correct the detected shape)", open=False,
                              elem_classes="studio-settings") as mapping_box:
                mapping = {r: gr.Dropdown([("(none)", "")], value="", label=f"{r.capitalize()} column", allow_custom_value=True)
                           for r in ROLES}
                remap = gr.Button("Apply mapping")
        with gr.Column(scale=4):
            with gr.Accordion("Filters and splits", open=True, elem_classes="studio-settings"):
                for pair in (FILTERS[:2], FILTERS[2:4]):
                    with gr.Row():
                        for name in pair:
                            form.add("data", name)
                with gr.Row():
                    form.add("data", "seed")
                    form.add("data", "max_examples")
                for name in FILTERS[6:]:
                    form.add("data", name)
            counts = gr.Markdown()
    with gr.Row():
        with gr.Column(scale=2):
            form.add("data", "template", choices=template_choices())
            form.add("data", "custom_template", lines=4, visible=False)
            form.add("data", "system_prompt", lines=2)
            form.add("data", "max_length")
        with gr.Column(scale=3):
            with gr.Row():
                prev = gr.Button("◀ Previous", size="sm")
                index = gr.Number(1, label="Example #", precision=0, minimum=1, min_width=100)
                nxt = gr.Button("Next ▶", size="sm")
            preview_box = gr.HTML(label="Template preview")
    with gr.Row():
        with gr.Column():
            histogram = gr.Plot(label="Token lengths", elem_id="length-plot")
            lengths_note = gr.Markdown()
            with gr.Row(equal_height=True):
                budget = gr.Number(report.BUDGET_MINUTES, label="Time budget (minutes)", minimum=1, maximum=1440,
                                   info="How long you want training to take on this machine.")
                suggested = gr.Number(None, label="Suggested max examples", precision=0, interactive=False)
                use_suggested = gr.Button("Use the suggested size", size="sm", interactive=False)
            suggestion = gr.Markdown(elem_id="subset-suggestion")
        table = gr.Dataframe(label="First examples", headers=list(ROLES), wrap=True, max_height=360,
                             column_widths=["40%", "30%", "30%"])
    return DataTab(source, sample, sample_info, upload, hub_id, load, keep, shape, problems_box, problems, mapping_box,
                   mapping, remap, counts, index, prev, nxt, preview_box, histogram, lengths_note, budget, suggestion,
                   suggested, use_suggested, table)


# ---- handlers: widgets -> settings -> data_steps -> {component: value} ---------------------------------------

class DataHandlers:
    """The Data tab's handlers: widget values -> settings -> `data_steps`, answered as {component: value}."""

    def __init__(self, ctx: Context, tab: DataTab) -> None:
        self.ctx, self.tab, self.services, self.form = ctx, tab, ctx.services, ctx.form
        self.template = ctx.form.widgets["data_template"]

    @guarded
    def load_data(self, state: SessionState, source: str, sample: str, upload: str | None = None,
                  hub_id: str | None = None, token: str | None = None, progress: gr.Progress = gr.Progress(),
                  **values: Any) -> dict:
        """Load a sample, an uploaded file or a Hub dataset, report what was repaired or skipped, and split it."""
        settings, tab = self.form.to_settings(values), self.tab
        spec = steps.source_spec(state, source, sample, upload, hub_id, self.services.max_upload_bytes)
        read = lambda fraction: progress(fraction, desc="Reading the file")  # noqa: E731 - a one-line adapter
        try:
            template = steps.load_into_state(self.services, state, settings, spec, token=token or None, progress=read)
        except ShapeError as exc:  # rows are fine, the shape is unknown: let the visitor map columns
            gr.Warning(str(exc))
            return {**self._refused(state, exc, exc.columns), tab.mapping_box: gr.Accordion(open=True),
                    tab.shape: f"⚠ {exc} {fix_for_ui(exc.columns)}".rstrip()}
        except TruncatedFileError as exc:  # a partial download: offer its complete records instead of refusing
            gr.Warning(str(exc))
            keep = gr.update(visible=True, value=f"Keep the {exc.complete:,} complete records")
            return {**self._refused(state, exc, []), tab.keep: keep}
        mapping = self._mapping(state.loaded.columns, state.loaded.shape.mapping)
        return {**self._loaded(state), **mapping, self.template: gr.update(value=template),
                tab.keep: gr.update(visible=False)}

    @guarded
    def remap(self, state: SessionState, instruction: str, input: str, output: str, token: str | None = None,
              **values: Any) -> dict:
        """Reload the current file or Hub dataset with an explicit instruction/input/output column mapping."""
        if not state.spec:
            raise DataError("Load a dataset before mapping its columns.")
        if state.spec.startswith("sample:"):
            raise DataError("Built-in samples have a fixed shape; column mapping applies to files and Hub datasets.")
        column_map = {"instruction": instruction, "input": input, "output": output}
        # The template stays as the visitor set it: a mapping made by hand recommends none.
        steps.load_into_state(self.services, state, self.form.to_settings(values), token=token or None,
                              column_map=column_map)
        return self._loaded(state)

    @guarded
    def split(self, state: SessionState, **values: Any) -> dict:
        """Apply the filters and split fractions to the loaded data; returns the row counts."""
        steps.split(state, self.form.to_settings(values))
        return {self.ctx.state: state, self.tab.counts: steps.counts(state), self.tab.table: steps.table(state)}

    @guarded
    def show_preview(self, state: SessionState, index: float = 1, token: str | None = None, **values: Any) -> dict:
        """The template preview of training example `index` (1-based): masked vs trained tokens."""
        examples, tab = state.examples(), self.tab
        if not examples:
            empty = "<p>Load a dataset to preview how the template formats it.</p>"
            return {self.ctx.state: state, tab.preview: empty, tab.index: 1}
        settings = self.form.to_settings(values)
        state.index = (int(index or 1) - 1) % len(examples)
        try:
            tokenizer, template = steps.tokenizer_and_template(self.services, settings, token)
            html = preview_html(preview(tokenizer, template, examples[state.index], settings.data.max_length))
        except StudioError as exc:  # a bad template or an unloadable tokenizer: say so where the preview goes
            html = f'<p class="tok-warning" style="color:#b91c1c">{exc}</p>'
        note = f"<p>Example {state.index + 1} of {len(examples)} training examples.</p>"
        return {self.ctx.state: state, tab.preview: note + html, tab.index: state.index + 1}

    @guarded
    def lengths(self, state: SessionState, budget: float | None = None, token: str | None = None,
                **values: Any) -> dict:
        """Token lengths of a seeded sample against max length, the chat-template note, and a subset size that
        trains within the time budget at this machine's speed."""
        settings, train, tab = self.form.to_settings(values), state.examples(), self.tab
        nothing = {tab.histogram: None, tab.lengths_note: "", tab.suggestion: "", tab.suggested: None,
                   tab.use_suggested: gr.update(interactive=False)}
        sample = seeded_sample(train, LENGTH_SAMPLE, settings.data.seed)
        if not sample:
            return nothing
        try:
            tokenizer, template = steps.tokenizer_and_template(self.services, settings, token)
        except StudioError as exc:
            return {**nothing, tab.lengths_note: str(exc)}
        limit = settings.data.max_length
        found = token_lengths(tokenizer, template, sample, limit)
        held_out = len(state.splits.test) + len(state.splits.validation) if state.splits is not None else 0
        text, size = report.subset_suggestion(self.services.runs_root, settings, found, len(train), held_out,
                                              float(budget or report.BUDGET_MINUTES))
        return {tab.histogram: length_histogram(found, limit),
                tab.lengths_note: report.lengths_note(found, len(train), limit, state.loaded, settings.data.template),
                tab.suggestion: text, tab.suggested: size, tab.use_suggested: gr.update(interactive=size is not None)}

    def _mapping(self, columns: list[str], mapping: dict[str, str]) -> dict:
        return dict(zip(self.tab.mapping.values(), steps.mapping_updates(columns, mapping)))

    def _loaded(self, state: SessionState) -> dict:
        """What Load data and Apply mapping both show once the data is in: summary, counts, table, problems."""
        tab, summary = self.tab, state.loaded.summary
        return {self.ctx.state: state, tab.shape: report.summary_markdown(state.loaded),
                tab.counts: steps.counts(state), tab.table: steps.table(state), tab.index: gr.update(value=1),
                tab.problems_box: gr.Accordion(visible=summary is not None and not summary.clean, open=False),
                tab.problems: report.problems_html(summary)}

    def _refused(self, state: SessionState, exc: Exception, columns: list[str]) -> dict:
        """A source that did not load: its sentence in the summary line, the mapping offering `columns`."""
        tab = self.tab
        return {self.ctx.state: state, tab.shape: f"⚠ {exc}", **self._mapping(columns, {}), tab.counts: "",
                tab.table: steps.table(state), tab.index: gr.update(value=1),
                tab.problems_box: gr.Accordion(visible=False), tab.problems: "", tab.keep: gr.update(visible=False)}


def wire_data_tab(ctx: Context, tab: DataTab) -> None:
    """Connect the Data tab's events (after every tab exists, since the preview needs the model's tokenizer)."""
    state, token, form, on = ctx.state, ctx.token, ctx.form, DataHandlers(ctx, tab)
    # Bound once each: Gradio groups events under one concurrency limit by the id of their function.
    load_data, show_preview, lengths = on.load_data, on.show_preview, on.lengths
    data_model, with_train, widget = form.kwargs("data", "model"), form.kwargs("data", "model", "train"), form.widgets
    view_in, view_out = [state, tab.index, token], [state, tab.preview, tab.index]
    lengths_in = [state, tab.budget, token]
    lengths_out = [tab.histogram, tab.lengths_note, tab.suggestion, tab.suggested, tab.use_suggested]

    def then_view(event: Any) -> Any:
        return (event.then(show_preview, view_in, view_out, inputs_kwargs=data_model, api_visibility="private")
                .then(lengths, lengths_in, lengths_out, inputs_kwargs=with_train, api_visibility="private"))

    # The named preview/lengths endpoints are registered first so they keep their plain API names.
    template_widgets = [widget[f"data_{n}"] for n in ("template", "custom_template", "system_prompt", "max_length")]
    gr.on([w.change for w in template_widgets] + [tab.index.submit], show_preview, view_in, view_out,
          inputs_kwargs=data_model, api_name="preview", trigger_mode="always_last").then(
        lengths, lengths_in, lengths_out, inputs_kwargs=with_train, api_name="lengths")
    tab.budget.submit(lengths, lengths_in, lengths_out, inputs_kwargs=with_train, api_visibility="private")
    tab.use_suggested.click(steps.suggested_size, tab.suggested, widget["data_max_examples"], api_visibility="private")
    widget["data_template"].change(steps.custom_template_box, widget["data_template"], widget["data_custom_template"],
                                   api_visibility="private")
    by_source = [tab.sample, tab.sample_info, tab.upload, tab.hub_id, widget["data_hub_split"]]
    tab.source.change(steps.source_widgets, tab.source, by_source, api_visibility="private")
    tab.sample.change(sample_markdown, tab.sample, tab.sample_info, api_visibility="private")
    # The order is the API's: clients read the results by position (errors mark only the line under Load).
    outputs = [state, tab.shape, tab.mapping_box, *tab.mapping.values(), tab.counts, tab.table,
               widget["data_template"], tab.index, tab.problems_box, tab.problems, tab.keep]
    load_in = [state, tab.source, tab.sample, tab.upload, tab.hub_id, token]
    then_view(tab.load.click(load_data, load_in, outputs, inputs_kwargs=data_model, api_name="load_data",
                             show_progress_on=tab.shape))
    # "Keep the N complete records": switch the setting on and load again (API clients pass it to /load_data).
    then_view(tab.keep.click(lambda: True, None, widget["data_keep_truncated"], api_visibility="private")
              .then(load_data, load_in, outputs, inputs_kwargs=data_model, api_visibility="private",
                    show_progress_on=tab.shape))
    then_view(tab.remap.click(on.remap, [state, *tab.mapping.values(), token],
                              [state, tab.shape, tab.counts, tab.table, tab.index, tab.problems_box, tab.problems],
                              inputs_kwargs=data_model, api_name="remap", show_progress_on=tab.shape))
    filters = [widget[f"data_{n}"] for n in FILTERS]
    then_view(gr.on([w.change for w in filters], on.split, [state], [state, tab.counts, tab.table],
                    inputs_kwargs=data_model, api_name="split", trigger_mode="always_last",
                    show_progress_on=tab.counts))
    for button, delta in ((tab.prev, -1), (tab.next, 1)):
        move = functools.partial(steps.moved, delta=delta)
        button.click(move, [state, tab.index], tab.index, api_visibility="private").then(
            show_preview, view_in, view_out, inputs_kwargs=data_model, api_visibility="private")
