"""The prompt box's latency idle vs while a job trains, on the tiny model."""
from __future__ import annotations

from bench.latency import ask_latency
from tests.tiny import tiny_loader


def test_ask_latency_idle_and_while_training():
    out = ask_latency(repeats=2, threads=1, loader=tiny_loader, train_steps=400)
    assert out["idle_s"] > 0 and out["training_s"] > 0 and out["ratio"] == out["training_s"] / out["idle_s"]
    assert out["threads"] == 1 and len(out["idle_runs"]) == 2 and out["job_trained_throughout"]
