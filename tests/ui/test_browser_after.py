"""After the first run, in headless Chromium on the tiny model: chat streamed side by side (and stopped), the
snapshot timeline with its slider, Stop during Compare, Train more and two runs compared, and the issue's kill -9
scenario: the app killed mid-run, started again, the run listed "interrupted", Resume brings it to "completed".

Screenshots land in screenshots/ (gitignored) for a human to look at.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client

from studio import runs
from tests.browser_utils import free_port, launch_studio, open_studio_page

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "screenshots"
TIMEOUT_MS = 120_000
RUN = {"train_max_steps": 8, "train_batch_size": 4, "data_max_test_examples": 6, "data_validation_fraction": 0.2,
       "train_eval_steps": 2, "generation_max_new_tokens": 6, "generation_batch_size": 2}


def wait_for_job(c: Client) -> dict:
    while (details := c.predict(api_name="/progress")[5])["status"] in runs.ACTIVE:
        time.sleep(0.3)
    return details


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio (each generated token slowed to 40 ms, so a stream can be watched) with one trained run."""
    root = tmp_path_factory.mktemp("runs")
    demo, url = launch_studio(root, step_delay=0.05, generate_delay=0.04)
    c = Client(url, verbose=False)
    c.predict(api_name="/load_data")
    c.predict(**RUN, api_name="/train")
    run_id = wait_for_job(c)["run_id"]
    yield url, root, run_id
    demo.close()


def new_page(browser, url: str):
    return open_studio_page(browser, url, TIMEOUT_MS)


@pytest.fixture()
def page(browser, studio):
    page = new_page(browser, studio[0])
    yield page
    page.context.close()


def shot(page, name: str, full: bool = True, element: str = "") -> None:
    SHOTS.mkdir(exist_ok=True)
    if element:
        page.locator(element).screenshot(path=str(SHOTS / f"{name}.png"))
    else:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def wait_for_run_choice(page, run_id: str) -> None:
    """Until a run picker (a dropdown's input) shows the run."""
    page.wait_for_function(f"() => [...document.querySelectorAll('input')].some(i => i.value.includes('{run_id}'))")


def test_chat_streams_both_models_side_by_side_and_stops(page, studio):
    page.get_by_role("tab", name="6 · Chat").click()
    wait_for_run_choice(page, studio[2])
    page.get_by_label("System prompt (optional)").fill("You answer in one short sentence.")
    message = page.get_by_label("Message", exact=True)
    message.fill("Uppercase the word: river")
    message.press("Enter")
    # The tuned model streams once the base answer is in: catch it mid-answer (its cursor is showing).
    page.wait_for_function("() => document.querySelector('#chat-tuned').innerText.includes('▌')")
    shot(page, "9-chat-streaming", full=False)
    page.wait_for_function("() => !document.querySelector('#chat-tuned').innerText.includes('▌')"
                           " && !document.querySelector('#chat-status').innerText.includes('answering')")
    status = text_of(page, "#chat-status")
    assert "Base: Gemma 3 270M (adapter disabled)" in status and f"Tuned: run {studio[2]} adapter" in status
    assert re.search(r"(ended with|ran to the token limit|cut at)", status)
    # A second turn, stopped while the base model writes.
    message.fill("Now tell me a long story about it")
    message.press("Enter")
    page.wait_for_function("() => document.querySelector('#chat-base').innerText.includes('▌')")
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_function("() => document.querySelector('#chat-base').innerText.includes('[stopped]')")
    page.wait_for_function("() => document.querySelector('#chat-status').innerText.includes('stopped')")
    time.sleep(0.5)
    shot(page, "9-chat-done", full=False)
    assert text_of(page, "#chat-base").count("Uppercase the word: river") == 1
    page.get_by_role("button", name="Clear both").click()
    page.wait_for_function("() => !document.querySelector('#chat-base').innerText.includes('river')")


def set_number(page, label: str, value: str) -> None:
    box = page.locator(f"input[aria-label='number input for {label}']:visible, "
                       f"input[aria-label='{label}']:visible").first
    box.fill(value)
    box.press("Tab")


def train_in_the_page(page, steps: int, validation: str = "0") -> None:
    """Train the default sample for `steps` steps as this visitor (a visitor may change only their own runs)."""
    page.get_by_role("button", name="Load data").click()
    page.get_by_text("detected shape").first.wait_for()
    set_number(page, "Validation fraction", validation)
    page.get_by_role("tab", name="2 · Model & LoRA").click()
    page.get_by_label("Max steps", exact=True).fill(str(steps))
    page.get_by_label("Max steps", exact=True).press("Tab")
    page.get_by_role("tab", name="3 · Train").click()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("the adapter is saved in").first.wait_for()


def test_watch_it_learn_timeline_and_stop_during_compare(page, studio):
    train_in_the_page(page, 8, validation="0.2")
    page.get_by_role("tab", name="4 · Compare").click()
    # Stop during Compare: the examples both models finished are kept and the page says how many.
    page.get_by_text("Generation settings").first.click()
    set_number(page, "Batch size", "1")  # one example per batch, so a stop lands between examples
    page.get_by_role("button", name="Compare on the test split").click()
    page.get_by_text(re.compile(r"Tuned model answering")).first.wait_for()
    page.get_by_role("button", name="Stop (keeps the examples answered)").click()
    page.get_by_text(re.compile(r"Stopped after \d+ of 48 examples; scores cover")).first.wait_for()
    set_number(page, "Batch size", "48")  # the timeline answers every point in one batch
    page.get_by_text("Watch it learn: every snapshot scored, step by step").click()
    page.get_by_role("button", name="Score every snapshot").click()
    page.wait_for_function("() => { const p = document.querySelector('#timeline-plot .js-plotly-plot');"
                           " return p && p.data && p.data.length >= 2; }")
    page.get_by_text("Answers of step 8 of 8").first.wait_for()
    points = page.evaluate("() => document.querySelector('#timeline-plot .js-plotly-plot').data[0].x")
    assert points == [0, 2, 4, 6, 8]
    slider = page.locator("#timeline input[type=range]").first
    slider.focus()
    for _ in range(3):
        slider.press("ArrowLeft")
    page.get_by_text("Answers of step 2 of 8").first.wait_for()
    page.get_by_role("button", name="Use the best snapshot as the run's adapter").click()
    page.get_by_text(re.compile(r"The run now uses its step-\d snapshot as its adapter")).first.wait_for()
    time.sleep(0.8)
    shot(page, "10-timeline", element="#timeline")
    page.get_by_role("button", name="Restore the final adapter").click()
    page.get_by_text("The run uses its final adapter again.").first.wait_for()


def test_train_more_then_compare_two_runs(page, studio):
    train_in_the_page(page, 4)
    page.get_by_role("tab", name="5 · Runs").click()
    page.get_by_role("gridcell", name="yes").first.wait_for()  # the run just trained, picked as the newest
    set_amount = page.get_by_label("Train more by")
    set_amount.fill("3")
    page.get_by_role("radio", name="steps").check()
    page.get_by_role("button", name="Train more (a new run from this one)").click()
    page.get_by_text(re.compile(r"Trained 3 steps; the adapter is saved in")).first.wait_for()  # the Train tab, live
    assert page.get_by_role("tab", name="3 · Train", selected=True).is_visible()
    page.get_by_role("tab", name="5 · Runs").click()
    page.get_by_text("Compare two runs").click()
    page.get_by_role("button", name="Compare the two runs").click()
    page.wait_for_function("() => { const p = document.querySelector('#runs-loss-plot .js-plotly-plot');"
                           " return p && p.data && p.data.length >= 2; }")
    page.get_by_role("gridcell", name="train.max_steps").first.wait_for()
    # The continuation is drawn from the step its parent stopped at (4): steps 5-7.
    steps = page.evaluate("() => document.querySelector('#runs-loss-plot .js-plotly-plot').data.map(t => t.x)")
    assert sorted(map(tuple, steps)) == [(1, 2, 3, 4), (5, 6, 7)]
    time.sleep(0.8)
    shot(page, "11-compare-two-runs", element="#runs-compare")


def wait_for_server(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the app worker ended early"
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the app worker did not start")


def start_app(root: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "app_worker.py"), str(root), str(port), "0.25"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    wait_for_server(f"http://127.0.0.1:{port}/", proc)
    return proc


def test_the_app_killed_mid_run_lists_it_interrupted_and_resume_completes_it(browser, tmp_path):
    root, port, log = tmp_path / "runs", free_port(), tmp_path / "app.log"
    proc = start_app(root, port, log)
    try:
        page = new_page(browser, f"http://127.0.0.1:{port}/")
        page.get_by_role("button", name="Load data").click()
        page.get_by_text("detected shape").first.wait_for()
        page.get_by_role("tab", name="2 · Model & LoRA").click()
        page.get_by_text("Advanced training settings").click()
        for label, value in (("Max steps", "16"), ("Save steps", "2")):
            box = page.get_by_label(label, exact=True)
            box.fill(value)
            box.press("Tab")
        page.get_by_role("tab", name="3 · Train").click()
        page.get_by_role("button", name="Start training").click()
        page.get_by_text(re.compile(r"step ([3-9]|1[0-2]) / 16")).first.wait_for()
        proc.send_signal(signal.SIGKILL)  # kill -9 the app mid-run
        proc.wait(timeout=30)
        [run_dir] = [p for p in root.iterdir() if runs.RUN_ID.match(p.name)]
        killed_at = max(r["step"] for r in runs.RunFolder(run_dir).read_metrics() if r.get("loss") is not None)
        assert killed_at < 16 and runs.RunFolder(run_dir).latest_checkpoint() is not None

        proc = start_app(root, port, log)  # restart on the same port: the browser keeps its visitor id
        # The same browser opens the studio again. Not waiting for the load event: once, under a loaded CI, it did
        # not come within 120 s although the page was served; what counts is that the page works.
        page.goto(f"http://127.0.0.1:{port}/", wait_until="commit")
        page.get_by_role("tab", name="5 · Runs").click()
        page.get_by_role("gridcell", name="interrupted").first.wait_for()
        shot(page, "12-interrupted")
        page.get_by_role("button", name="Resume (interrupted, stopped or failed run)").click()
        page.get_by_text("Trained 16 steps; the adapter is saved in").first.wait_for()
        info = runs.read_run(root, run_dir.name)
        assert (info.status, info.step, info.total_steps) == ("completed", 16, 16)
        steps = [r["step"] for r in runs.RunFolder(run_dir).read_metrics() if r.get("loss") is not None]
        assert steps == list(range(1, 17))
        page.wait_for_function("() => { const p = document.querySelector('#loss-plot .js-plotly-plot');"
                               " return p && p.data && p.data[0].x.length === 16; }")  # the chart continued
        shot(page, "12-resumed")
        page.context.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)
