"""The Train tab's several-process run driven through the named endpoints (gradio_client, tiny model by name)."""
from __future__ import annotations

import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from studio.runs import read_run
from tests.tiny import make_tiny_tokenizer, tiny_loader

QUICK = {"train_max_steps": 2, "train_batch_size": 2, "train_threads": 1, "data_max_test_examples": 2}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio with the tiny loader injected by an importable name, so launched processes can load it too."""
    from app import build_app, launch_kwargs
    from tests.browser_utils import free_port

    runs = tmp_path_factory.mktemp("runs")
    demo = build_app(model_loader=tiny_loader, tokenizer_loader=lambda settings, token=None: make_tiny_tokenizer(),
                     runs_root=runs)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **launch_kwargs())
    yield url, runs
    demo.close()


def poll_until_done(c: Client, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        details = c.predict(api_name="/poll")[5]
        if isinstance(details, dict) and details.get("status") in ("completed", "stopped", "failed"):
            return details
        time.sleep(0.5)
    raise AssertionError("training did not finish in time")


def test_train_on_two_processes_from_the_page(studio):
    url, runs = studio
    c = Client(url, verbose=False)
    c.predict(api_name="/load_data")
    c.predict(**QUICK, train_num_processes=2, api_name="/train")
    details = poll_until_done(c)
    assert details["status"] == "completed" and details["step"] == 2, details
    progress_html, figure, log, result, *_ = c.predict(api_name="/progress")
    assert "Training on 2 processes (gloo)" in log and figure is not None and "saved" in result
    info = read_run(runs, details["run_id"])
    assert info.num_processes == 2 and info.backend == "gloo" and info.has_adapter


def test_too_many_processes_is_one_sentence_on_the_page(studio):
    c = Client(studio[0], verbose=False)
    c.predict(api_name="/load_data")
    with pytest.raises(AppError) as exc:  # the page shows it as its one-sentence error notice
        c.predict(**QUICK, train_num_processes=4096, api_name="/train")
    said = str(exc.value)
    assert "train.num_processes is 4096, but this machine has" in said and said.endswith(".") and "\n" not in said
