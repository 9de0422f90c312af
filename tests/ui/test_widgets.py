"""Widgets built from the settings dataclasses carry their defaults, ranges and help; values round-trip."""
from __future__ import annotations

import dataclasses

import gradio as gr
import pytest

from studio.errors import SettingsError, StudioError
from studio.settings import SECTIONS, StudioSettings, field_meta
from ui.errors import GENERIC, guarded
from ui.widgets import SettingsForm, key, make_widget

FIELDS = [(section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
          if not isinstance(getattr(cls(), f.name), dict)]


@pytest.fixture(scope="module")
def widgets() -> dict:
    """One widget per field, built once (building Gradio components is not free)."""
    with gr.Blocks():
        return {(section, name): make_widget(section, name) for section, name in FIELDS}


@pytest.fixture()
def form() -> SettingsForm:
    """Every settings field as a widget, inside a throwaway Blocks."""
    form = SettingsForm()
    with gr.Blocks():
        for section in SECTIONS:
            form.add_section(section)
    return form


@pytest.mark.parametrize(("section", "name"), FIELDS)
def test_widget_carries_default_and_help(widgets: dict, section: str, name: str) -> None:
    widget = widgets[section, name]
    default, meta = getattr(SECTIONS[section](), name), field_meta(section, name)
    assert widget.info == meta["help"]
    if isinstance(default, list):
        assert widget.value == default and widget.multiselect
    else:
        assert widget.value == default


@pytest.mark.parametrize(("section", "name"), FIELDS)
def test_widget_type_and_range_follow_the_field(widgets: dict, section: str, name: str) -> None:
    widget = widgets[section, name]
    default, meta = getattr(SECTIONS[section](), name), field_meta(section, name)
    if isinstance(default, bool):
        assert isinstance(widget, gr.Checkbox)
    elif "choices" in meta:
        assert isinstance(widget, gr.Dropdown)
        assert [c[1] for c in widget.choices] == list(meta["choices"])
    elif isinstance(default, (int, float)):
        assert isinstance(widget, (gr.Slider, gr.Number))
        if "min" in meta:
            assert widget.minimum == meta["min"]
        if "max" in meta:
            assert widget.maximum == meta["max"]
        if meta.get("exclusive_max") is not None:
            assert widget.maximum < meta["exclusive_max"]
        if isinstance(widget, gr.Number) and isinstance(default, int):
            assert widget.precision == 0
    elif isinstance(default, str):
        assert isinstance(widget, gr.Textbox)


def test_specific_widgets_are_sensible(widgets: dict) -> None:
    lr, r, frac = widgets["train", "learning_rate"], widgets["lora", "r"], widgets["data", "test_fraction"]
    assert isinstance(lr, gr.Number)  # a 1e-8..1 slider would make useful rates unreachable
    assert isinstance(r, gr.Slider) and (r.minimum, r.maximum, r.step) == (1, 512, 1)
    assert isinstance(frac, gr.Slider) and frac.maximum < 1.0 and frac.value == 0.1


def test_defaults_round_trip(form: SettingsForm) -> None:
    values = {k: w.value for k, w in form.widgets.items()}
    assert form.to_settings(values) == StudioSettings()


def test_changed_values_round_trip(form: SettingsForm) -> None:
    values = {k: w.value for k, w in form.widgets.items()}
    values.update({key("train", "learning_rate"): 1e-4, key("lora", "r"): 8.0, key("lora", "target_modules"):
                   ["q_proj", "v_proj"], key("data", "template"): "alpaca", key("generation", "do_sample"): True})
    settings = form.to_settings(values)
    assert settings.train.learning_rate == 1e-4
    assert settings.lora.r == 8 and isinstance(settings.lora.r, int)
    assert settings.lora.target_modules == ["q_proj", "v_proj"]
    assert settings.data.template == "alpaca" and settings.generation.do_sample is True
    assert dict(zip(form.widgets, form.updates(settings))) == {**values, key("lora", "r"): 8}


def test_every_field_except_mappings_has_a_widget(form: SettingsForm) -> None:
    assert {form.fields[k] for k in form.widgets} == set(FIELDS)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"lora_r": 0}, "lora.r must be at least 1, not 0."),
    ({"train_batch_size": None}, "train.batch_size must be a number, not None."),
    ({"data_test_fraction": 0.6, "data_validation_fraction": 0.5}, "must leave some rows for training"),
    ({"generation_temperature": 9.0}, "generation.temperature must be at most 5.0, not 9.0."),
])
def test_bad_values_raise_one_sentence(form: SettingsForm, changes: dict, expected: str) -> None:
    values = {k: w.value for k, w in form.widgets.items()} | changes
    with pytest.raises(SettingsError) as err:
        form.to_settings(values)
    message = str(err.value)
    assert expected in message and message.count(". ") == 0 and message.endswith(".")


def test_guarded_turns_errors_into_one_sentence(form: SettingsForm) -> None:
    @guarded
    def handler(**values):
        return form.to_settings(values)

    with pytest.raises(gr.Error) as err:
        handler(lora_r=0)
    assert err.value.message == "lora.r must be at least 1, not 0."

    @guarded
    def broken():
        raise KeyError("internal detail")

    with pytest.raises(gr.Error) as err:
        broken()
    assert err.value.message == GENERIC and "internal" not in err.value.message


def test_guarded_keeps_the_signature_gradio_reads() -> None:
    import inspect

    @guarded
    def handler(state, index: float = 1, **values):
        raise StudioError("x")

    assert list(inspect.signature(handler).parameters) == ["state", "index", "values"]
