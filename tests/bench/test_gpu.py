"""`python -m bench gpu` refuses in one sentence where no GPU is visible (and measures nothing)."""
from __future__ import annotations

import torch

from bench import gpu
from bench.main import main


def test_bench_gpu_refuses_without_a_gpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["gpu"]) == 2
    out = capsys.readouterr().out.strip()
    assert out == gpu.NO_GPU and "\n" not in out and out.endswith(".")
