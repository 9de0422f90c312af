"""End to end in headless Chromium: load a sample, preview, train (watching the chart grow), compare, runs.

Screenshots of every tab land in screenshots/ (gitignored) for a human to look at.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.browser_utils import launch_studio, open_studio_page

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "screenshots"
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio with the tiny model, each training step slowed to 0.15 s so the chart can be watched."""
    demo, url = launch_studio(tmp_path_factory.mktemp("runs"), step_delay=0.15)
    yield url
    demo.close()


@pytest.fixture()
def page(browser, studio):
    page = open_studio_page(browser, studio, TIMEOUT_MS)
    yield page
    page.context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title).click()


def loss_points(page) -> int:
    """Points in the loss chart's first trace (0 before the chart exists)."""
    return page.evaluate("""() => {
        const plot = document.querySelector('#loss-plot .js-plotly-plot');
        return plot && plot.data && plot.data.length ? plot.data[0].x.length : 0;
    }""")


def set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")


def test_studio_end_to_end(page):
    # Data: load the default sample, see shape, counts, preview with trained/masked tokens, step through examples.
    page.get_by_role("button", name="Load data").click()
    page.get_by_text("detected shape").first.wait_for()
    page.locator(".token-preview .tok-trained").first.wait_for()
    page.get_by_role("button", name="Next ▶").click()
    page.get_by_text("Example 2 of").first.wait_for()
    page.locator("#length-plot .js-plotly-plot").wait_for()
    page.get_by_text("examples fit in").first.wait_for()
    shot(page, "1-data")

    # Model & LoRA: inspect the (tiny) model and ask for a short run.
    open_tab(page, "2 · Model & LoRA")
    page.get_by_role("button", name="Load / inspect").click()
    page.get_by_text("Time / epoch").first.wait_for()
    set_number(page, "Max steps", "40")
    shot(page, "2-model")

    # Train: the chart gains points while the job runs, then the job says what it saved.
    open_tab(page, "3 · Train")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_function("() => { const p = document.querySelector('#loss-plot .js-plotly-plot');"
                           " return p && p.data && p.data.length && p.data[0].x.length >= 2; }")
    early = loss_points(page)
    shot(page, "3-train-running")
    page.wait_for_function(f"() => {{ const p = document.querySelector('#loss-plot .js-plotly-plot');"
                           f" return p && p.data && p.data[0].x.length > {early}; }}")
    page.get_by_text("the adapter is saved in").first.wait_for()
    assert loss_points(page) >= 40 > early
    page.get_by_role("button", name="Download the adapter (.zip)").wait_for()
    shot(page, "3-train-done")

    # Compare: BLEU before -> after with its interval, how answers were cut, the raw answers one click away, then
    # the free prompt box.
    open_tab(page, "4 · Compare")
    page.get_by_role("button", name="Compare on the test split").click()
    page.get_by_text(re.compile(r"\[95% CI ")).first.wait_for()
    assert page.locator(".card.big .value").count() == 1 and page.locator(".compare-headline").is_visible()
    assert page.get_by_text(re.compile(r"^Answers cut at the first")).first.is_visible()
    page.get_by_text("Raw answers, before the cut").click()
    page.locator(".raw-list summary").first.click()
    assert page.locator(".raw-list details[open] pre").count() == 2
    page.get_by_label("Instruction", exact=True).fill("Sort the words.")
    page.get_by_role("button", name="Answer with both").click()
    page.get_by_text("Tuned: run").first.wait_for()
    time.sleep(1.0)
    shot(page, "4-compare")

    # Runs: the run is listed as completed and marked as ours.
    open_tab(page, "5 · Runs")
    page.get_by_role("gridcell", name="completed").first.wait_for()
    assert page.get_by_role("gridcell", name="yes").count() >= 1
    shot(page, "5-runs")

    # Take it home: GGUF + Modelfile, its check against the studio's answers, and the merged model as a zip.
    page.get_by_text("Export or share the selected run").click()
    page.get_by_text("of disk is free on the server").first.wait_for()
    page.get_by_role("button", name="GGUF + Ollama Modelfile").click()
    page.get_by_text("GGUF written").first.wait_for()
    page.get_by_role("button", name="Verify export").click()
    page.get_by_text(re.compile(r"f16 GGUF: \d+/\d+ answers equal the studio's tuned answers")).first.wait_for()
    page.get_by_role("button", name="Merged model (.zip download)").click()
    page.get_by_text("Merged model zip ready").first.wait_for()
    shot(page, "5-runs-export")


def test_reload_reattaches_to_the_running_job(page):
    page.get_by_role("button", name="Load data").click()
    page.get_by_text("detected shape").first.wait_for()
    open_tab(page, "2 · Model & LoRA")
    set_number(page, "Max steps", "200")  # 30 s: long enough that the stop below always comes first
    open_tab(page, "3 · Train")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"step [1-9]\d* / 200")).first.wait_for()
    page.reload()
    open_tab(page, "3 · Train")
    page.wait_for_function("() => { const p = document.querySelector('#loss-plot .js-plotly-plot');"
                           " return p && p.data && p.data.length && p.data[0].x.length >= 1; }")
    before = loss_points(page)
    page.wait_for_function(f"() => document.querySelector('#loss-plot .js-plotly-plot').data[0].x.length > {before}")
    page.get_by_role("button", name="Stop (keeps the adapter trained so far)").click()
    page.get_by_text("Stopped at step").first.wait_for()


def test_bad_upload_shows_one_sentence(page, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("just some notes")
    page.get_by_label("Upload a file").check()
    page.locator("#data-upload input[type=file]").set_input_files(str(bad))
    page.get_by_role("button", name="Load data").click()
    toast = page.get_by_text("which is not a supported format").first
    toast.wait_for()
    time.sleep(0.5)  # let the toast finish sliding in
    assert "Traceback" not in page.content()
    shot(page, "6-bad-upload")


def choose(page, label: str, option: str) -> None:
    """Pick an option of a Gradio dropdown."""
    box = page.get_by_label(label, exact=True)
    box.click()
    box.fill(option)
    box.press("Enter")
    page.locator("body").click(position={"x": 5, "y": 5})  # close the option list


def test_unknown_columns_are_mapped_in_the_page(page, tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("question_text,reply\n" + "".join(f"say {w},{w}\n" for w in "abcdefghij"))
    page.get_by_label("Upload a file").check()
    page.locator("#data-upload input[type=file]").set_input_files(str(data))
    page.get_by_role("button", name="Load data").click()
    page.get_by_text("⚠ No known dataset shape fits the columns").first.wait_for()
    choose(page, "Instruction column", "question_text")
    choose(page, "Output column", "reply")
    page.get_by_role("button", name="Apply mapping").click()
    page.get_by_text("mapped by hand").first.wait_for()
    page.get_by_text("Example 1 of").first.wait_for()
    page.locator("#length-plot .js-plotly-plot").wait_for()
    time.sleep(0.5)
    shot(page, "7-column-mapping")


def test_a_messy_cut_off_chat_file_loads_with_its_summary(page):
    messy = Path(__file__).resolve().parents[1] / "data" / "messy" / "sharegpt_irregular.json"
    page.get_by_label("Upload a file").check()
    page.locator("#data-upload input[type=file]").set_input_files(str(messy))
    page.get_by_role("button", name="Load data").click()
    keep = page.get_by_role("button", name="Keep the 12 complete records")
    keep.wait_for()
    keep.click()
    page.get_by_text("Kept 9 of 12 rows: 1 repaired (leading assistant turn)").first.wait_for()
    page.get_by_text("Rows repaired or skipped (examples of each reason)").click()
    page.get_by_text("leading assistant turn: 1 repaired").first.wait_for()
    page.get_by_text("unknown role: 1 skipped").first.wait_for()
    assert page.get_by_label("Template", exact=True).input_value().startswith("Chat (")
    box = page.get_by_label("Example #", exact=True)
    box.fill("5")  # the multi-turn chat (seed 42): both of its answers in the trained colour
    box.press("Enter")
    page.get_by_text("2 assistant turns").first.wait_for()
    page.locator("#length-plot .js-plotly-plot").wait_for()
    assert page.locator(".tok-trained").count() > 4
    time.sleep(0.5)
    shot(page, "8-messy-chats")
