"""The app-vs-command-line bench line, end to end on the tiny model (the app in-process, polled by gradio_client)."""
from __future__ import annotations

import json

from bench.app import app_run, app_table, bench_app, cli_run, summarise_app, widget_values
from tests.browser_utils import launch_studio
from tests.tiny import tiny_loader

OVERRIDES = {"train": {"max_steps": 3, "threads": 1}}


def test_overrides_become_the_train_endpoints_keywords():
    assert widget_values({"train": {"max_steps": "3"}, "lora": {"r": 4}}) == {"train_max_steps": 3, "lora_r": 4}


def test_ratio_and_verdict_of_the_medians():
    run = {"wall_seconds": 10.0, "steps": 3, "threads": 2, "thread_policy": "pinned", "polls": 0,
           "load_start": 1.0, "load_end": 1.0}
    out = summarise_app({"cli": [{**run, "train_seconds": 10.0}, {**run, "train_seconds": 12.0}],
                         "app": [{**run, "train_seconds": 12.0}, {**run, "train_seconds": 12.2}]}, OVERRIDES)
    assert out["ratio"] == 12.1 / 11.0 and out["pass"] is True and out["wall_ratio"] == 1.0
    out = summarise_app({"cli": [{**run, "train_seconds": 10.0}], "app": [{**run, "train_seconds": 11.5}]}, OVERRIDES)
    assert out["pass"] is False and "FAIL" in "\n".join(app_table(out))


def test_tiny_app_and_cli_runs_interleaved(tmp_path):
    demo, url = launch_studio(tmp_path / "runs")
    said: list[str] = []
    try:
        out = bench_app(2, OVERRIDES, lambda: cli_run(OVERRIDES, loader=tiny_loader),
                        lambda: app_run(url, tmp_path / "runs", OVERRIDES, tick=0.2), say=said.append)
    finally:
        demo.close()
    assert [line.split()[2] for line in said] == ["cli", "app", "app", "cli"]  # the order flips every round
    for side in ("cli", "app"):
        assert out[side]["train_seconds"] > 0 and out[side]["threads"] == 1 and out[side]["thread_policy"] == "pinned"
    assert out["app"]["polls"] >= 1 and out["ratio"] > 0
    json.dumps(out)
