"""What a test needs beyond the project itself (Chromium, Playwright, the dev extras): skipped where it is missing on
a developer's machine, a failure under CI=true, where a skipped test would pass without having checked anything."""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def on_ci() -> bool:
    """Whether this run is CI's (CI=true, as .ci/run and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for a missing dependency, or fail it under CI=true."""
    if on_ci():
        pytest.fail(f"{reason}; CI must run every test (scripts/test.sh installs it)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def need(module: str) -> ModuleType:
    """Import `module` (a package from requirements-dev.txt), or skip / fail as `unavailable` says."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        unavailable(f"{module} is not installed ({error})")
