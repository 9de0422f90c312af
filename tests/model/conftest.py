"""Fixtures of the model tests."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """An empty studio home ($STUDIO_HOME) for one test."""
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
