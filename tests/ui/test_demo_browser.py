"""The first five minutes in headless Chromium: the one-click demo, its stop and reattach, the cold-start progress,
presentation mode at 1280x720 and the page at 390 px. Screenshots land in screenshots/ (gitignored) to look at.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from studio.model.warmup import Warmup
from tests.browser_utils import launch_studio, slow_fake_build

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "screenshots"
TIMEOUT_MS = 120_000
RUN = "▶ Run the before/after demo"
CHART_POINTS = """(n) => { const p = document.querySelector('#demo-loss-plot .js-plotly-plot');
                            return p && p.data && p.data.length && p.data[0].x.length >= n; }"""


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio with the tiny model, each training step slowed to 0.1 s so the chart can be watched."""
    demo, url = launch_studio(tmp_path_factory.mktemp("runs"), step_delay=0.1)
    yield url
    demo.close()


def open_page(browser, url: str, width: int = 1400, height: int = 1000):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.get_by_role("button", name="Load data").wait_for()
    return context, page


def shot(page, name: str, full: bool = True) -> None:
    SHOTS.mkdir(exist_ok=True)
    time.sleep(0.5)  # let charts and toasts settle
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def chart_points(page) -> int:
    return page.evaluate("() => { const p = document.querySelector('#demo-loss-plot .js-plotly-plot');"
                         " return p && p.data && p.data.length ? p.data[0].x.length : 0; }")


def test_one_click_demo_runs_live_reattaches_and_lands_on_the_audience_page(browser, studio):
    context, page = open_page(browser, studio)
    page.get_by_role("button", name=RUN).first.click()  # the shortcut on the Data tab
    assert page.get_by_role("tab", name="▶ Demo").get_attribute("aria-selected") == "true" or \
        page.wait_for_function("() => document.querySelector('[data-tab-id=demo]').getAttribute('aria-selected')"
                               " === 'true'")
    page.wait_for_function(CHART_POINTS, arg=3)
    assert page.locator(".demo-steps li.current", has_text="Train").is_visible()
    page.get_by_text(re.compile(r"step \d+ / 60")).first.wait_for()
    shot(page, "demo-1-training", full=False)

    page.reload()  # reattaches: the Demo tab picks the running demo up again, its chart still growing
    page.get_by_role("tab", name="▶ Demo").click()
    page.wait_for_function(CHART_POINTS, arg=1)
    before = chart_points(page)
    page.wait_for_function(CHART_POINTS, arg=before + 1)

    page.locator(".demo-examples").wait_for()
    assert page.locator(".demo-steps li.done").count() == 5
    assert page.locator(".demo-example").count() == 3 and page.get_by_text("Before tuning").first.is_visible()
    assert page.locator(".card.big .sub").first.inner_text().startswith(("+", "-"))
    assert "95% CI" in page.locator(".card.big").first.inner_text()
    page.locator("#demo-report [aria-label='report.html']").wait_for()
    assert page.get_by_text(re.compile(r"^Done in \d+ s\.")).first.is_visible()
    page.get_by_label("Instruction", exact=True).last.fill("Sort the words.")
    page.get_by_role("button", name="Answer with both").last.click()
    page.wait_for_function("() => [...document.querySelectorAll('.answer-box textarea')]"
                           ".some(t => t.offsetParent && t.value.length > 0)")
    shot(page, "demo-2-results")

    # Presentation mode: large type, the settings (and the settings-only tab) out of sight, readable at 1280x720.
    page.set_viewport_size({"width": 1280, "height": 720})
    page.get_by_label("Presentation mode").check()
    page.wait_for_function("() => document.body.classList.contains('presenting')")
    assert not page.get_by_role("tab", name="2 · Model & LoRA").is_visible()
    assert page.evaluate("() => getComputedStyle(document.querySelector('.gradio-container')).zoom") == "1.25"
    page.locator(".demo-steps").scroll_into_view_if_needed()
    shot(page, "demo-3-presentation-1280x720", full=False)
    page.locator(".demo-examples").scroll_into_view_if_needed()
    shot(page, "demo-4-presentation-examples-1280x720", full=False)
    page.reload()  # the choice is remembered in this browser
    page.wait_for_function("() => document.body.classList.contains('presenting')")
    page.get_by_label("Presentation mode").uncheck()
    assert page.get_by_role("tab", name="2 · Model & LoRA").is_visible()
    context.close()


def test_the_demo_stops_and_says_what_it_kept(browser, studio):
    context, page = open_page(browser, studio)
    page.get_by_role("tab", name="▶ Demo").click()
    page.get_by_role("button", name=RUN).last.click()
    page.wait_for_function(CHART_POINTS, arg=2)
    page.get_by_role("button", name="■ Stop (keeps what is finished)").click()
    page.get_by_text(re.compile(r"^Stopped at step \d+ of 60; the adapter trained so far is saved")).first.wait_for()
    assert page.locator(".demo-steps li.stopped", has_text="Train").is_visible()
    assert not page.locator(".demo-examples").is_visible()
    shot(page, "demo-5-stopped", full=False)
    context.close()


def test_narrow_screen_keeps_the_steps_in_view_tables_scroll_and_charts_fit(browser, studio):
    context, page = open_page(browser, studio, width=390, height=844)
    tabs = page.locator("[role=tablist] button[role=tab]")
    assert tabs.count() == 7 and page.get_by_label("More tabs").count() == 0  # no "..." overflow menu
    for i in range(6):
        box = tabs.nth(i).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(page, "narrow-1-data-390")
    page.get_by_role("tab", name="▶ Demo").click()
    page.get_by_role("button", name=RUN).last.click()  # a short run of its own to compare and list
    page.wait_for_function(CHART_POINTS, arg=3)
    assert max(page.evaluate("() => [...document.querySelectorAll('.demo-steps li')]"
                             ".map(li => li.getBoundingClientRect().right)")) <= 390
    shot(page, "narrow-2-demo-390")
    page.get_by_role("button", name="■ Stop (keeps what is finished)").click()
    page.locator(".demo-steps li.stopped").wait_for()
    page.get_by_role("tab", name="4 · Compare").click()
    page.get_by_role("button", name="Compare on the test split").click()
    page.locator(".compare-headline").wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('.table-container td')].some(t => t.offsetParent)")
    scrolls = page.evaluate("() => [...document.querySelectorAll('.block')].filter(b => b.querySelector("
                            "':scope > .table-container') && b.offsetParent).map(b => b.scrollWidth > b.clientWidth)")
    assert scrolls and all(scrolls)  # the side-by-side table scrolls sideways instead of squeezing its columns
    widths = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.offsetParent)"
                           ".map(p => p.getBoundingClientRect().right)")
    assert widths and max(widths) <= 390
    shot(page, "narrow-3-compare-390")
    page.get_by_role("tab", name="5 · Runs").click()
    page.get_by_role("gridcell", name="stopped").first.wait_for()
    shot(page, "narrow-4-runs-390", full=False)
    context.close()


def test_cold_start_shows_its_progress_on_the_model_and_train_tabs(browser, tmp_path):
    ensure, ready = slow_fake_build(12.0)
    demo, url = launch_studio(tmp_path / "runs", warmup=Warmup(ensure=ensure, ready=ready))
    try:
        context, page = open_page(browser, url)
        page.get_by_role("tab", name="2 · Model & LoRA").click()
        banner = page.locator(".cold-start").first
        banner.wait_for()
        first = banner.inner_text()
        assert re.match(r"Preparing the embedded model \(first start only\): \d+ s of about \d+ s, ", first)
        page.wait_for_function("() => { const t = document.querySelector('.cold-start'); return t && "
                               f"t.innerText !== {first!r}; }}")  # the seconds tick on
        shot(page, "cold-1-model-tab", full=False)
        page.get_by_role("tab", name="3 · Train").click()
        page.locator(".cold-start").last.wait_for()
        assert page.get_by_text("No data loaded yet.").first.is_visible()
        shot(page, "cold-2-train-tab", full=False)
        page.wait_for_function("() => ![...document.querySelectorAll('.cold-start')].some(b => b.offsetParent)",
                               timeout=60_000)  # gone once the model is ready
        context.close()
    finally:
        demo.close()
