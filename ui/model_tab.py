"""Model & LoRA tab: choose and inspect the base model, set every LoRA and training knob, load or save presets."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.data.formatting import token_lengths
from studio.data.templates import template_for
from studio.errors import DataError
from studio.model.info import default_target_modules, estimate_epoch_seconds, model_info
from studio.presets import list_presets, load_preset, preset_description, save_preset
from studio.settings import EMBEDDED_MODEL, StudioSettings, field_meta
from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState
from ui.theme import card, cards, duration, human_bytes, human_count

MODEL_CHOICES = [("Gemma 3 270M (embedded base model)", EMBEDDED_MODEL)]
REMOTE_CODE_WARNING = ("⚠ **Trust remote code** runs Python shipped with the model repository on this server. "
                       "Enable it only for repositories you trust.")
MAIN_TRAIN = ("epochs", "max_steps", "learning_rate", "batch_size", "grad_accum", "lr_scheduler", "warmup_steps")


@dataclass
class ModelTab:
    """The Model tab's components that handlers read or write."""

    preset: Any
    preset_info: Any
    load_preset: Any
    save_name: Any
    save_description: Any
    save: Any
    inspect: Any
    info: Any
    remote_warning: Any


def create_model_tab(ctx: Context) -> ModelTab:
    """Lay out the Model & LoRA tab and register the model, LoRA and training widgets on the form."""
    form, presets = ctx.form, list_presets(ctx.services.preset_dir)
    with gr.Row():
        with gr.Column(scale=3):
            preset = gr.Dropdown(presets, value=presets[0] if presets else None, label="Preset",
                                 allow_custom_value=True)  # presets saved later are not in the first list
            preset_info = gr.Markdown(_preset_markdown(ctx, presets[0]) if presets else "")
            load = gr.Button("Load preset into every tab", size="sm")
        with gr.Column(scale=2), gr.Accordion("Save current settings as a preset", open=False):
            save_name = gr.Textbox("", label="Preset name", placeholder="my-preset (lowercase, digits, - and _)")
            save_description = gr.Textbox("", label="Description", placeholder="One line: what it is for")
            save = gr.Button("Save preset", size="sm")
    with gr.Row():
        with gr.Column(scale=2):
            form.register("model", "model", gr.Dropdown(
                MODEL_CHOICES, value=EMBEDDED_MODEL, label="Base model", allow_custom_value=True,
                info=field_meta("model", "model")["help"]))
            form.add("model", "revision")
            remote = form.add("model", "trust_remote_code")
            remote_warning = gr.Markdown(REMOTE_CODE_WARNING, visible=False)
            ctx.token = gr.Textbox("", label="Hugging Face token (optional)", type="password",
                                   info="For gated models and private datasets; used for this request only, "
                                        "never saved.")
            inspect = gr.Button("Load / inspect", variant="primary")
        with gr.Column(scale=3):
            info = gr.HTML(cards(card("Parameters", "–", "press Load / inspect")))
    remote.change(lambda on: gr.update(visible=on), remote, remote_warning, api_visibility="private")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### LoRA adapter")
            form.add_section("lora")
        with gr.Column():
            gr.Markdown("### Training")
            for name in MAIN_TRAIN:
                form.add("train", name)
            with gr.Accordion("Advanced training settings", open=False):
                form.add_section("train", skip=MAIN_TRAIN)
    return ModelTab(preset, preset_info, load, save_name, save_description, save, inspect, info, remote_warning)


def _preset_markdown(ctx: Context, name: str) -> str:
    return f"*{preset_description(name, ctx.services.preset_dir)}*" if name else ""


def current_settings(ctx: Context, state: SessionState, values: dict[str, Any]) -> StudioSettings:
    """Settings from every widget, with the dataset the visitor loaded and its column mapping."""
    settings = ctx.form.to_settings(values)
    if state.loaded is not None:  # not a spec whose file failed to load
        settings.data.dataset = state.spec
        settings.data.column_map = dict(state.column_map)
    return settings


def _train_tokens(state: SessionState, settings: StudioSettings, tokenizer: Any) -> int:
    """Tokens in one pass over the training split, each example capped at max_length."""
    examples = state.examples()
    if not examples:
        return 0
    data = settings.data
    template = template_for(data, tokenizer)
    return sum(min(n, data.max_length) for n in token_lengths(tokenizer, template, examples, data.max_length))


class ModelHandlers:
    """The Model tab's handlers: inspect the base model, load and save presets, answered as {component: value}."""

    def __init__(self, ctx: Context, tab: ModelTab) -> None:
        self.ctx, self.tab, self.form, self.services = ctx, tab, ctx.form, ctx.services

    @guarded
    def inspect_model(self, state: SessionState, token: str, **values: Any) -> dict:
        """Load the base model and report its size, memory, FLOPs per token and estimated time per epoch."""
        settings = self.form.to_settings(values)
        loaded = self.services.model_loader(settings.model, token=token or None)
        info = model_info(loaded.model)
        n_tokens = _train_tokens(state, settings, loaded.tokenizer)
        epoch = (duration(estimate_epoch_seconds(info, n_tokens)) if n_tokens else "–")
        epoch_sub = f"{human_count(n_tokens)} training tokens, this CPU" if n_tokens else "load data first"
        cached = ", from cache" if loaded.from_cache else ""
        html = cards(
            card("Parameters", human_count(info.n_params),
                 f"{info.architecture}, {info.n_layers} layers; loaded in {duration(loaded.load_seconds)}{cached}"),
            card("Memory", human_bytes(info.memory_bytes), "fp32 weights + buffers"),
            card("FLOPs / token", human_count(info.flops_per_token_forward), f"forward; head {info.lm_head_share:.0%}"),
            card("Time / epoch", epoch, epoch_sub),
            min_px=240,  # two by two in the narrower right-hand column
        )
        targets = self.form.widgets["lora_target_modules"]
        return {self.tab.info: html, targets: gr.update(choices=default_target_modules(loaded.model))}

    @guarded
    def apply_preset(self, name: str) -> dict:
        """Every settings widget set to the preset's values (defaults + its overrides), and its sample if it has one."""
        settings = load_preset(name, folder=self.services.preset_dir)
        out = dict(zip(self.form.widgets.values(), self.form.updates(settings)))
        dataset = settings.data.dataset
        if dataset.startswith("sample:"):
            out.update({self.ctx.data.source: "Built-in sample", self.ctx.data.sample: dataset.removeprefix("sample:")})
        gr.Info(f"Preset {name} loaded; press Load data if it names another dataset.")
        return out

    @guarded
    def save_current(self, state: SessionState, name: str, description: str, **values: Any) -> Any:
        """Save the current settings (only what differs from the defaults) as a new preset."""
        if not name.strip():
            raise DataError("Give the preset a name first.")
        settings = current_settings(self.ctx, state, values)
        if state.upload_dir and settings.data.dataset.startswith(state.upload_dir):
            # An upload lives in a temporary folder: a preset naming it would break later.
            settings.data.dataset, settings.data.column_map = StudioSettings().data.dataset, {}
        path = save_preset(name.strip(), settings, description, self.services.preset_dir)
        gr.Info(f"Saved preset {path.stem}.")
        return gr.update(choices=list_presets(self.services.preset_dir), value=path.stem)

    def preset_markdown(self, name: str) -> str:
        """The chosen preset's description."""
        return _preset_markdown(self.ctx, name)


def wire_model_tab(ctx: Context, tab: ModelTab) -> None:
    """Connect inspect, presets load/save."""
    state, form, on = ctx.state, ctx.form, ModelHandlers(ctx, tab)
    tab.preset.change(on.preset_markdown, tab.preset, tab.preset_info, api_visibility="private")
    tab.inspect.click(on.inspect_model, [state, ctx.token], [tab.info, form.widgets["lora_target_modules"]],
                      inputs_kwargs=form.kwargs(), api_name="inspect_model", show_progress_on=tab.info)
    tab.load_preset.click(on.apply_preset, tab.preset, [*form.widgets.values(), ctx.data.source, ctx.data.sample],
                          api_name="load_preset")
    tab.save.click(on.save_current, [state, tab.save_name, tab.save_description], tab.preset,
                   inputs_kwargs=form.kwargs(), api_name="save_preset")
