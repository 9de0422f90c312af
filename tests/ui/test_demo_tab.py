"""The one-click demo through its named endpoints (/run_demo, /demo_progress, /stop_demo) on the tiny model."""
from __future__ import annotations

import re
import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.browser_utils import launch_studio

QUICK = {"train_max_steps": 3, "train_batch_size": 4, "data_max_test_examples": 4, "generation_max_new_tokens": 4}
ACTIVE = ("queued", "preparing", "training", "saving", "evaluating")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio with the tiny model, each training step slowed to 0.05 s so a demo can be stopped mid-run."""
    demo, url = launch_studio(tmp_path_factory.mktemp("runs"), step_delay=0.05)
    yield url
    demo.close()


def wait_for_demo(c: Client, timeout: float = 180) -> tuple:
    """Poll /demo_progress until the demo has ended; returns the last view (details first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = c.predict(api_name="/demo_progress")
        if view[0] and view[0]["status"] not in ACTIVE:
            return view
        time.sleep(0.3)
    raise AssertionError("the demo did not end in time")


def test_demo_endpoints_are_named(studio):
    names = set(Client(studio, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/run_demo", "/demo_progress", "/stop_demo", "/cache_progress"} <= names


def test_one_click_demo_loads_trains_compares_and_lands_on_the_results(studio):
    c = Client(studio, verbose=False)
    note, details, steps, status, *_ = c.predict(**QUICK, api_name="/run_demo")
    assert details["status"] in ACTIVE and details["stage"] in ("data", "model", "train") and note == ""
    assert 'class="demo-steps"' in steps
    details, steps, status, scores, examples, plot, report, _timer = wait_for_demo(c)
    assert details["status"] == "completed" and details["stage"] == "results" and details["step"] == 3
    assert steps.count('class="done"') == 5 and re.search(r"Done in \d+ s\.</strong> Trained 3 steps", status)
    assert re.search(r'>BLEU</div><div class="value"><span class="before">[\d.]+</span> → [\d.]+</div>'
                     r'<div class="sub">[+-][\d.]+ \[95% CI ', scores)
    assert examples.count('class="demo-example"') == 3 and "Before tuning" in examples and "Expected: " in examples
    assert plot["visible"] and plot["value"] is not None
    assert sorted(f.rsplit(".", 1)[-1] for f in report["value"]) == ["html", "md"]
    assert details["headline"] and len(details["bleu"]) == 2

    # The demo is the visitor's job: the Train tab shows it, Runs lists it, /ask answers with its adapter.
    train = c.predict(api_name="/progress")[5]
    assert train["run_id"] == details["run_id"] and train["status"] == "completed"
    assert c.predict(api_name="/list_runs")[0]["data"][0][0] == details["run_id"]
    base, tuned = c.predict(details["run_id"], "Sort the words.", "pear apple", generation_max_new_tokens=3,
                            api_name="/ask")
    assert isinstance(base["value"], str) and tuned["label"] == f"Tuned: run {details['run_id']} adapter"


def test_stop_while_training_keeps_the_adapter_and_says_so(studio):
    c = Client(studio, verbose=False)
    with pytest.raises(AppError, match="^No demo of yours is running.$"):
        c.predict(api_name="/stop_demo")
    c.predict(**{**QUICK, "train_max_steps": 400}, api_name="/run_demo")
    deadline = time.monotonic() + 120
    while (c.predict(api_name="/demo_progress")[0].get("step") or 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    with pytest.raises(AppError, match="^You already have a training run in progress"):
        c.predict(**QUICK, api_name="/train")  # one job per visitor: the demo counts
    said = c.predict(api_name="/stop_demo")
    assert said.startswith("Stopping: training keeps the adapter trained so far")
    details, steps, status, *_ = wait_for_demo(c)
    assert details["status"] == "stopped" and details["stage"] == "train"
    assert details["message"].startswith("Stopped at step ") and "the adapter trained so far is saved" in \
        details["message"] and details["message"].endswith("The comparison was skipped.")
    assert '<li class="stopped">' in steps and '<div class="demo-ended stopped">Stopped at step' in status


def test_demos_belong_to_their_visitor(studio):
    a, b = Client(studio, verbose=False), Client(studio, verbose=False)
    a.predict(**{**QUICK, "train_max_steps": 400}, api_name="/run_demo")
    assert b.predict(api_name="/demo_progress")[0] == {}  # b has no demo, and cannot stop a's
    with pytest.raises(AppError, match="^No demo of yours is running.$"):
        b.predict(api_name="/stop_demo")
    a.predict(api_name="/stop_demo")
    assert wait_for_demo(a)[0]["status"] == "stopped"
