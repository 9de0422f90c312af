"""Settings dataclasses: defaults, bounds, overrides, CLI assignments."""
from __future__ import annotations

import pytest

from studio.errors import SettingsError
from studio.settings import (
    DataSettings,
    GenerationSettings,
    LoraSettings,
    StudioSettings,
    TrainSettings,
    apply_overrides,
    field_meta,
    parse_assignments,
)


@pytest.mark.parametrize("make, match", [
    (lambda: LoraSettings(r=0), "lora.r must be at least 1"),
    (lambda: TrainSettings(learning_rate=-1e-4), "train.learning_rate must be at least"),
    (lambda: DataSettings(test_fraction=1.0), "data.test_fraction must be below 1.0"),
    (lambda: DataSettings(test_fraction=0.6, validation_fraction=0.5), "leave some rows for training"),
    (lambda: TrainSettings(lr_scheduler="zigzag"), "train.lr_scheduler must be one of"),
    (lambda: GenerationSettings(max_new_tokens=0), "generation.max_new_tokens must be at least 1"),
    (lambda: TrainSettings(batch_size=0), "train.batch_size must be at least 1"),
])
def test_out_of_range_values_raise(make, match):
    with pytest.raises(SettingsError, match=match):
        make()


def test_overrides_coerce_types_and_reject_unknown_keys():
    s = apply_overrides(StudioSettings(), {"train": {"learning_rate": "1e-4", "batch_size": "4"}, "lora": {"target_modules": "q_proj, v_proj"}})
    assert s.train.learning_rate == 1e-4 and s.train.batch_size == 4 and s.lora.target_modules == ["q_proj", "v_proj"]
    with pytest.raises(SettingsError, match="Unknown setting train.lr"):
        apply_overrides(StudioSettings(), {"train": {"lr": 1}})
    with pytest.raises(SettingsError, match="Unknown settings section"):
        apply_overrides(StudioSettings(), {"optim": {}})
    with pytest.raises(SettingsError, match="must be a number"):
        apply_overrides(StudioSettings(), {"train": {"batch_size": "many"}})
    with pytest.raises(SettingsError, match="true or false"):
        apply_overrides(StudioSettings(), {"train": {"fast_loss": "maybe"}})


def test_roundtrip_dict():
    s = apply_overrides(StudioSettings(), {"data": {"column_map": {"instruction": "q"}}})
    assert StudioSettings.from_dict(s.to_dict()) == s


def test_parse_assignments():
    assert parse_assignments(["train.epochs=2", "lora.r=8"]) == {"train": {"epochs": "2"}, "lora": {"r": "8"}}
    with pytest.raises(SettingsError, match="section.key=value"):
        parse_assignments(["epochs=2"])


def test_field_meta_has_help_and_bounds():
    meta = field_meta("lora", "r")
    assert meta["help"] and meta["min"] == 1
    for section in ("data", "model", "lora", "train", "generation"):
        for name, value in getattr(StudioSettings(), section).__dict__.items():
            assert field_meta(section, name)["help"], f"{section}.{name} has no help text"


def test_a_saved_run_with_a_retired_setting_still_opens_but_a_preset_may_not_set_it(tmp_path):
    from studio.runs import RunFolder
    from studio.settings import RETIRED

    assert "train.fused_lora" in RETIRED and all("." in key for key in RETIRED)
    saved = StudioSettings().to_dict()
    saved["train"]["fused_lora"] = True  # what runs saved before the fused LoRA forward was removed
    assert StudioSettings.from_dict(saved) == StudioSettings()
    folder = RunFolder(tmp_path)
    folder.write_json(folder.settings_file, saved)
    assert folder.read_settings() == StudioSettings()  # the run folder opens as before
    with pytest.raises(SettingsError, match=r"train.fused_lora no longer exists \(LoRA's fused forward was removed"):
        apply_overrides(StudioSettings(), {"train": {"fused_lora": False}})  # presets, command line, widgets
    with pytest.raises(SettingsError, match="Unknown setting train.fused_lroa"):
        StudioSettings.from_dict({"train": {"fused_lroa": True}})  # only retired keys are forgiven
