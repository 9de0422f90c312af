"""Settings dataclasses -> typed Gradio widgets, and widget values -> settings again.

Every widget takes its default, range and help text (`info=`) from the field's metadata in `studio.settings`,
so the UI can never drift from the library. Values come back through `apply_overrides`, which coerces and
validates them, so a bad value surfaces as the library's one-sentence `SettingsError`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr

from studio.settings import SECTIONS, StudioSettings, apply_overrides, field_meta

# A float range wider than this ratio (max/min) is a log-scale quantity such as a learning rate: a slider would
# make most of it unreachable, so it becomes a number box.
_LOG_RANGE = 1e4
LABELS = {
    "r": "LoRA rank (r)", "alpha": "LoRA alpha", "dropout": "LoRA dropout", "bias": "Bias",
    "target_modules": "Target modules", "grad_accum": "Gradient accumulation", "lr_scheduler": "LR schedule",
    "max_grad_norm": "Max gradient norm", "max_length": "Max length (tokens)", "top_p": "Top-p",
    "num_beams": "Beams", "max_new_tokens": "Max new tokens", "fast_loss": "Fast loss",
    "fused_head": "Fused output head",
    "load_in_4bit": "Load in 4-bit (QLoRA)", "trust_remote_code": "Trust remote code",
    "threads": "CPU threads (pinned; 0 = every core)", "balance_threads": "Adaptive thread count (not reproducible)",
}


def key(section: str, name: str) -> str:
    """The keyword a widget's value is passed under (also the API parameter name), e.g. `train_learning_rate`."""
    return f"{section}_{name}"


def label_for(name: str) -> str:
    """A readable label: explicit ones above, else the field name in sentence case."""
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _default(section: str, name: str) -> Any:
    return getattr(SECTIONS[section](), name)


def _step(default: Any, meta: dict[str, Any]) -> float:
    if isinstance(default, int):
        return 1
    span = meta.get("max", meta.get("exclusive_max", 1.0)) - meta.get("min", 0.0)
    return 0.01 if span <= 10 else 0.1 if span <= 100 else 1.0


def make_widget(section: str, name: str, **overrides: Any) -> gr.components.Component:
    """One typed widget for `section.name` carrying the field's default, bounds, choices and help text."""
    meta, default = field_meta(section, name), _default(section, name)
    common: dict[str, Any] = {"label": label_for(name), "info": meta.get("help", ""), "value": default}
    common.update(overrides)
    if isinstance(default, bool):
        return gr.Checkbox(**common)
    if "choices" in common or "choices" in meta:  # declared choices, or ones the caller knows (templates)
        common.setdefault("choices", list(meta.get("choices", [])))
        return gr.Dropdown(**common)
    if isinstance(default, list):
        return gr.Dropdown(choices=list(default), multiselect=True, allow_custom_value=True, **common)
    if isinstance(default, (int, float)):
        low = meta.get("min")
        high = meta.get("max")
        step = _step(default, meta)
        if high is None and meta.get("exclusive_max") is not None:
            high = round(meta["exclusive_max"] - step, 6)
        log_scale = isinstance(default, float) and low and high and high / low >= _LOG_RANGE
        if low is not None and high is not None and not log_scale:
            return gr.Slider(minimum=low, maximum=high, step=step, **common)
        extra = {"precision": 0} if isinstance(default, int) else {}
        return gr.Number(minimum=low, maximum=high, **extra, **common)
    return gr.Textbox(**common)


class SettingsForm:
    """The settings widgets of every tab, keyed `section_name`, turned back into `StudioSettings` on demand."""

    def __init__(self) -> None:
        self.widgets: dict[str, gr.components.Component] = {}
        self.fields: dict[str, tuple[str, str]] = {}

    def add(self, section: str, name: str, **overrides: Any) -> gr.components.Component:
        """Create (in the current layout context) and register the widget for `section.name`."""
        widget = make_widget(section, name, **overrides)
        return self.register(section, name, widget)

    def register(self, section: str, name: str, widget: gr.components.Component) -> gr.components.Component:
        """Register a widget built elsewhere (e.g. a model dropdown with suggestions) for `section.name`."""
        self.widgets[key(section, name)] = widget
        self.fields[key(section, name)] = (section, name)
        return widget

    def add_section(self, section: str, skip: tuple[str, ...] = ()) -> dict[str, gr.components.Component]:
        """Widgets for every field of a section except `skip` and mapping-typed fields."""
        out = {}
        for f in dataclasses.fields(SECTIONS[section]):
            if f.name in skip or isinstance(_default(section, f.name), dict):
                continue
            out[f.name] = self.add(section, f.name)
        return out

    def section(self, section: str) -> dict[str, gr.components.Component]:
        """The registered widgets of one section, keyed by field name."""
        return {self.fields[k][1]: w for k, w in self.widgets.items() if self.fields[k][0] == section}

    def kwargs(self, *sections: str) -> dict[str, gr.components.Component]:
        """`inputs_kwargs` for an event: the widgets of the given sections (all when none given)."""
        return {k: w for k, w in self.widgets.items() if not sections or self.fields[k][0] in sections}

    def to_settings(self, values: dict[str, Any], base: StudioSettings | None = None) -> StudioSettings:
        """Settings from widget values (keyword names as in `kwargs`); out-of-range values raise SettingsError."""
        return settings_from_values(values, self.fields, base)

    def updates(self, settings: StudioSettings) -> list[Any]:
        """New widget values for `settings`, in the order of `list(self.widgets)` (for loading a preset)."""
        return [getattr(getattr(settings, s), n) for s, n in self.fields.values()]


def settings_from_values(values: dict[str, Any], fields: dict[str, tuple[str, str]],
                         base: StudioSettings | None = None) -> StudioSettings:
    """Nested overrides from `section_name` values, applied to `base` (defaults when None) and validated."""
    overrides: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if name in fields:
            section, field = fields[name]
            overrides.setdefault(section, {})[field] = value
    return apply_overrides(base or StudioSettings(), overrides)
