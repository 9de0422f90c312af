"""Fixtures of the UI tests: one headless Chromium per test module (browser tests)."""
from __future__ import annotations

import pytest

from tests.browser_utils import launch_chromium


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (skipped where Playwright or Chromium is missing)."""
    playwright = pytest.importorskip("playwright.sync_api").sync_playwright().start()
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()
    playwright.stop()
