"""The Compare tab's "Did it forget anything?" panel through its named endpoints (gradio_client) and in Chromium."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client

from studio.model.loading import LoadedModel
from tests.browser_utils import free_port
from tests.builders import make_finished_run
from tests.tiny import make_tiny_model, make_tiny_tokenizer

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"  # gitignored, for a human to look at
SLOW_FORWARD_S = 0.15  # per forward pass while SLOW is set, so a Stop lands mid-probe every time
SLOW = threading.Event()  # set by the stop test only: the other probes run at the tiny model's own speed


def slow_down(module, args) -> None:
    """A forward pre-hook: wait SLOW_FORWARD_S while SLOW is set (returns None, so the inputs stay as they are)."""
    if SLOW.is_set():
        time.sleep(SLOW_FORWARD_S)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio with the tiny model (each forward pass slowed a little while SLOW is set) and two finished runs."""
    from app import build_app, launch_kwargs

    runs = tmp_path_factory.mktemp("runs")
    tokenizer = make_tiny_tokenizer()
    first, _ = make_finished_run(runs, tokenizer)
    time.sleep(1.1)  # run ids carry the second they were made
    second, _ = make_finished_run(runs, tokenizer)

    def model_loader(settings, token=None) -> LoadedModel:
        model = make_tiny_model(tokenizer)
        model.get_input_embeddings().register_forward_pre_hook(slow_down)
        return LoadedModel(model, tokenizer, settings.model, "local", 0.01, False)

    demo = build_app(model_loader=model_loader, tokenizer_loader=lambda s, token=None: tokenizer, runs_root=runs)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **launch_kwargs())
    yield url, first, second
    demo.close()


def test_probe_endpoint_shows_categories_and_the_sentence(studio):
    url, first, _ = studio
    c = Client(url, verbose=False)
    html, plot = c.predict(run_id=first.name, api_name="/probe")
    for category in ("arithmetic", "word relations", "everyday facts", "grammar", "reading", "overall"):
        assert f">{category}<" in html
    assert "No significant loss" in html or "Lost " in html
    assert "95% interval" in html and plot is not None
    assert (first / "probe.json").is_file()
    assert "Did it forget anything?" in (first / "report.html").read_text()

    saved_html, saved_plot = c.predict(first.name, api_name="/saved_probe")
    assert saved_html == html and saved_plot is not None


def test_stop_ends_the_probe_and_saves_nothing(studio):
    url, _, second = studio
    c = Client(url, verbose=False)
    SLOW.set()
    try:
        job = c.submit(run_id=second.name, api_name="/probe")
        time.sleep(1.5)  # the model loads, then the first batches are scored
        c.predict(api_name="/stop_probe")
        html, _ = job.result(timeout=120)
    finally:
        SLOW.clear()
    assert "stopped; nothing was saved" in html
    assert not (second / "probe.json").exists()


def test_a_hub_task_offline_is_one_sentence(studio):
    url, first, _ = studio
    c = Client(url, verbose=False)
    with pytest.raises(Exception, match="needs its data from the Hugging Face Hub"):
        c.predict(run_id=first.name, tasks=["arc_easy"], api_name="/probe")


def test_without_lm_eval_the_panel_says_how_to_install_it(studio, monkeypatch):
    from studio.evaluate import probe

    url, first, _ = studio
    monkeypatch.setattr(probe, "lm_eval_installed", lambda: False)
    with pytest.raises(Exception, match="pip install 'lm-eval"):
        Client(url, verbose=False).predict(run_id=first.name, api_name="/probe")


@pytest.mark.browser
def test_panel_in_the_browser(browser, studio):
    url, first, _ = studio
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.set_default_timeout(120_000)
        SHOTS.mkdir(exist_ok=True)
        page.goto(url)
        page.get_by_role("tab", name="4 · Compare").click()
        page.get_by_role("button", name="Run the probe").click()
        page.get_by_text("95% interval").first.wait_for()
        assert page.get_by_text("word relations").first.is_visible()
        page.get_by_text("Change in accuracy").first.wait_for()  # the chart's title, once plotly has drawn it
        page.get_by_text("Did it forget anything?").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "probe_panel.png"), full_page=True)
    finally:
        page.close()
