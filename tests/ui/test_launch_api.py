"""The Train tab's several-process run driven through the named endpoints (gradio_client, tiny model by name)."""
from __future__ import annotations

import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from studio.runs import create_run, read_run, update_run
from studio.settings import StudioSettings, apply_overrides
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
    table, _ = c.predict(api_name="/list_runs")  # the Runs tab says how the run was launched
    row = dict(zip(table["headers"], next(r for r in table["data"] if r[0] == details["run_id"])))
    assert row["Launched"] == "2 processes (gloo)" and row["Status"] == "completed"


def test_too_many_processes_is_one_sentence_on_the_page(studio):
    c = Client(studio[0], verbose=False)
    c.predict(api_name="/load_data")
    with pytest.raises(AppError) as exc:  # the page shows it as its one-sentence error notice
        c.predict(**QUICK, train_num_processes=4096, api_name="/train")
    said = str(exc.value)
    assert "train.num_processes is 4096, but this machine has" in said and said.endswith(".") and "\n" not in said


def test_a_run_folder_from_a_bigger_machine_is_listed_and_resuming_it_is_one_sentence(studio):
    url, runs = studio
    config = "/cluster/fsdp.yaml"  # the settings of a run launched on a cluster: they open here, but cannot launch
    settings = apply_overrides(StudioSettings(), {"train": {"num_processes": 64, "accelerate_config": config}})
    info = create_run(runs, settings)
    update_run(info.path, status="interrupted", num_processes=64, backend="nccl", accelerate_config=config)
    c = Client(url, verbose=False)
    table, _ = c.predict(api_name="/list_runs")
    row = dict(zip(table["headers"], next(r for r in table["data"] if r[0] == info.run_id)))
    assert row["Launched"] == "64 processes (nccl, fsdp.yaml)" and row["Status"] == "interrupted"
    with pytest.raises(AppError) as exc:
        c.predict(run_id=info.run_id, api_name="/resume_run")
    said = str(exc.value)
    assert "train.accelerate_config /cluster/fsdp.yaml is not a file" in said and said.endswith(".") \
        and "\n" not in said
    assert read_run(runs, info.run_id).status == "interrupted"  # nothing started, nothing changed
