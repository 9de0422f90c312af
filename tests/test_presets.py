"""Every preset file loads into the settings dataclasses; unknown keys and bad names are errors."""
from __future__ import annotations

import pytest

from studio.errors import SettingsError
from studio.presets import (
    DEFAULT_PRESET,
    PRESET_DIR,
    diff_from_defaults,
    list_presets,
    load_preset,
    preset_description,
    read_preset,
    save_preset,
)
from studio.settings import StudioSettings, apply_overrides

REQUIRED = {"cpu-demo", "cpu-balanced", "gpu-quality", "codealpaca-gptneo", "lamini-pythia", "role-prompts-mistral"}


def test_required_presets_exist_and_default_is_first():
    names = list_presets()
    assert REQUIRED <= set(names)
    assert names[0] == DEFAULT_PRESET


@pytest.mark.parametrize("name", sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
def test_every_preset_validates_and_has_a_description(name):
    settings = load_preset(name)
    assert isinstance(settings, StudioSettings)
    description = preset_description(name)
    assert description and "\n" not in description.strip()
    # Presets list only what they change: no key may repeat a default value.
    raw = {k: v for k, v in read_preset(name).items() if k != "description"}
    assert diff_from_defaults(apply_overrides(StudioSettings(), raw)) == {k: v for k, v in diff_from_defaults(settings).items()}


def test_default_preset_is_the_dataclass_defaults():
    assert load_preset(DEFAULT_PRESET) == StudioSettings()


def test_tutorial_replicas_match_the_tutorials():
    neo = load_preset("codealpaca-gptneo")
    assert (neo.lora.r, neo.lora.alpha, neo.lora.target_modules, neo.train.epochs) == (8, 16, ["q_proj", "v_proj"], 3.0)
    assert neo.data.drop_with_input and neo.data.seed == 31 and neo.generation.num_beams == 5
    pythia = load_preset("lamini-pythia")
    assert (pythia.train.learning_rate, pythia.train.max_steps, pythia.train.batch_size, pythia.train.grad_accum) == (1e-6, 100, 1, 4)
    mistral = load_preset("role-prompts-mistral")
    assert (mistral.lora.r, mistral.lora.alpha, mistral.lora.dropout, mistral.train.gradient_checkpointing) == (16, 32, 0.05, True)


def test_unknown_key_in_a_preset_is_an_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("description: x\ntrain:\n  learning_rat: 0.1\n")
    with pytest.raises(SettingsError, match="Unknown setting train.learning_rat"):
        load_preset("bad", folder=tmp_path)


def test_out_of_range_value_in_a_preset_is_an_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("description: x\nlora:\n  r: 0\n")
    with pytest.raises(SettingsError, match="lora.r must be at least 1"):
        load_preset("bad", folder=tmp_path)


def test_save_preset_writes_only_overrides_and_refuses_bad_names(tmp_path):
    s = apply_overrides(StudioSettings(), {"lora": {"r": 4}})
    path = save_preset("mine", s, "my tweak", folder=tmp_path)
    assert read_preset("mine", folder=tmp_path) == {"description": "my tweak", "lora": {"r": 4}}
    assert load_preset("mine", folder=tmp_path) == s
    assert path.parent == tmp_path
    with pytest.raises(SettingsError, match="already exists"):
        save_preset("mine", s, "again", folder=tmp_path)
    for bad in ("../evil", "a/b", "", "UPPER"):
        with pytest.raises(SettingsError, match="Preset names"):
            save_preset(bad, s, "x", folder=tmp_path)
