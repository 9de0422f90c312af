"""Fixtures of the UI tests: one headless Chromium per test module (browser tests)."""
from __future__ import annotations

import pytest

from tests.browser_utils import launch_chromium, start_playwright


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (skipped where either is missing, a failure under CI=true)."""
    playwright = start_playwright()
    try:
        chromium = launch_chromium(playwright)
    except BaseException:
        playwright.stop()
        raise
    yield chromium
    chromium.close()
    playwright.stop()
