"""Presets: small YAML files under presets/ that list only what they change from the defaults."""
from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from studio.errors import SettingsError
from studio.settings import StudioSettings, apply_overrides

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
DEFAULT_PRESET = "cpu-demo"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _path(name: str, folder: Path) -> Path:
    """Preset file for a name; names are checked so user text never escapes the folder."""
    if not _NAME.match(name):
        raise SettingsError(f"Preset names use lowercase letters, digits, '-' and '_' only, not {name!r}.")
    return folder / f"{name}.yaml"


def list_presets(folder: Path = PRESET_DIR) -> list[str]:
    """Names of the presets on disk, the default first."""
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    return sorted(names, key=lambda n: n != DEFAULT_PRESET)


def read_preset(name: str, folder: Path = PRESET_DIR) -> dict[str, Any]:
    """The raw YAML of a preset: {"description": str, <section>: {key: value}}."""
    path = _path(name, folder)
    if not path.is_file():
        raise SettingsError(f"No preset named {name!r}; available: {', '.join(list_presets(folder))}.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"Preset {name!r} is not valid YAML ({exc.__class__.__name__}).") from None
    if not isinstance(data, dict):
        raise SettingsError(f"Preset {name!r} must be a mapping of sections to settings.")
    return data


def preset_description(name: str, folder: Path = PRESET_DIR) -> str:
    """The one-line description of a preset."""
    return str(read_preset(name, folder).get("description", ""))


def load_preset(name: str, base: StudioSettings | None = None, folder: Path = PRESET_DIR) -> StudioSettings:
    """Defaults (or `base`) with the preset's overrides applied; unknown keys raise SettingsError."""
    overrides = {k: v for k, v in read_preset(name, folder).items() if k != "description"}
    return apply_overrides(base or StudioSettings(), overrides)


def diff_from_defaults(settings: StudioSettings) -> dict[str, dict[str, Any]]:
    """Only the values that differ from the defaults, grouped by section."""
    default, current = asdict(StudioSettings()), asdict(settings)
    out: dict[str, dict[str, Any]] = {}
    for section, values in current.items():
        changed = {k: v for k, v in values.items() if default[section][k] != v}
        if changed:
            out[section] = changed
    return out


def save_preset(name: str, settings: StudioSettings, description: str, folder: Path = PRESET_DIR) -> Path:
    """Write the settings as a preset of overrides; refuses to overwrite a shipped preset."""
    path = _path(name, folder)
    if path.exists():
        raise SettingsError(f"A preset named {name!r} already exists; choose another name.")
    folder.mkdir(parents=True, exist_ok=True)
    body = {"description": description.strip() or name, **diff_from_defaults(settings)}
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path
