"""Resource checks: memory and disk estimates against monkeypatched free RAM, VRAM and disk, and 4-bit refusals."""
from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace

import pytest
import torch

from studio.errors import SettingsError
from studio.model import resources
from studio.model.info import model_info
from studio.settings import StudioSettings

GEMMA = SimpleNamespace(n_params=268_098_176, hidden_size=640, n_layers=18, vocab_size=262_144)


def _settings(**train) -> StudioSettings:
    return StudioSettings.from_dict({"train": train} if train else {})


def _free_ram(monkeypatch, gb: float) -> None:
    monkeypatch.setattr(resources.psutil, "virtual_memory", lambda: SimpleNamespace(available=int(gb * 1e9)))


def _free_disk(monkeypatch, gb: float) -> None:
    monkeypatch.setattr(resources.shutil, "disk_usage", lambda path: SimpleNamespace(free=int(gb * 1e9)))


def test_estimate_adds_up_and_follows_the_settings():
    base = resources.memory_estimate(GEMMA, _settings())
    parts = ("weights_bytes", "lora_bytes", "optimizer_bytes", "activation_bytes", "logits_bytes")
    assert base["total_bytes"] == int(sum(base[p] for p in parts) * 1.1)
    assert base["weights_bytes"] == GEMMA.n_params * 4
    assert base["lora_params"] == 16 * 18 * 640 * 23  # r * layers * (in + out) of q k v o gate up down
    assert base["optimizer_bytes"] == base["lora_params"] * 8
    double = resources.memory_estimate(GEMMA, _settings(batch_size=8))
    assert double["activation_bytes"] == 2 * base["activation_bytes"]
    assert resources.memory_estimate(GEMMA, _settings(gradient_checkpointing=True))["activation_bytes"] < \
        base["activation_bytes"] / 4
    assert resources.memory_estimate(GEMMA, _settings(fast_loss=False))["logits_bytes"] == 2 * base["logits_bytes"]
    assert resources.memory_estimate(GEMMA, _settings(), device="cuda")["activation_bytes"] == \
        base["activation_bytes"] // 2  # bf16 activations on a GPU


def test_four_bit_weights_are_about_an_eighth_of_fp32_outside_the_embeddings():
    small = resources.memory_estimate(7_000_000_000, _settings(load_in_4bit=True), device="cuda")
    full = resources.memory_estimate(7_000_000_000, _settings(), device="cuda")
    assert full["weights_bytes"] / 8 < small["weights_bytes"] < full["weights_bytes"] / 6


def test_estimate_from_a_real_model_info(tiny_model):
    info = model_info(tiny_model)
    estimate = resources.memory_estimate(info, _settings())
    assert estimate["weights_bytes"] == info.n_params * 4 and estimate["total_bytes"] > estimate["weights_bytes"]
    assert resources.memory_estimate(info.n_params, _settings())["total_bytes"] > 0


def test_enough_memory_gives_no_findings(monkeypatch):
    _free_ram(monkeypatch, 64)
    assert resources.check_resources(_settings(), GEMMA) == []


def test_too_little_memory_is_refused_with_the_setting_to_change(monkeypatch):
    _free_ram(monkeypatch, 1.2)
    need = resources.memory_estimate(GEMMA, _settings())["total_bytes"] / 1e9
    [message] = resources.check_resources(_settings(), GEMMA)
    assert message == (f"Training needs about {need:.1f} GB of memory but only 1.2 GB is free; lower "
                       "train.batch_size from 4 to 2 (and raise train.grad_accum to 2 to keep the same effective "
                       "batch) or data.max_length.")
    assert resources.blocking_problem(_settings(), GEMMA) == message


def test_a_tight_fit_is_only_a_warning(monkeypatch):
    need = resources.memory_estimate(GEMMA, _settings())["total_bytes"]
    _free_ram(monkeypatch, need * 1.05 / 1e9)
    [message] = resources.check_resources(_settings(), GEMMA)
    assert "may run out" in message and resources.blocking_problem(_settings(), GEMMA) is None


def test_gpu_memory_comes_from_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (int(0.5e9), int(16e9)))
    [message] = resources.check_resources(_settings(), GEMMA, device="cuda")
    assert "of GPU memory but only 0.5 GB is free" in message


def test_disk_for_checkpoints(monkeypatch, tmp_path):
    _free_ram(monkeypatch, 64)
    _free_disk(monkeypatch, 0.01)
    [message] = resources.check_resources(_settings(), GEMMA, runs_root=tmp_path / "not-yet-made")
    assert message.startswith("Training needs about") and "of disk for checkpoints but only 0.0 GB is free" in message
    _free_disk(monkeypatch, 50)
    assert resources.check_resources(_settings(), GEMMA, runs_root=tmp_path) == []


def test_four_bit_needs_cuda_and_bitsandbytes(monkeypatch):
    with pytest.raises(SettingsError, match="needs a CUDA GPU"):
        resources.check_resources(_settings(load_in_4bit=True), GEMMA)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(resources, "bitsandbytes_available", lambda: False)
    with pytest.raises(SettingsError, match="needs the bitsandbytes package"):
        resources.check_resources(_settings(load_in_4bit=True), GEMMA, device="cuda")


def test_bitsandbytes_probe_follows_whether_the_package_imports(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # a None entry makes `import bitsandbytes` raise
    assert resources.bitsandbytes_available() is False
    monkeypatch.setitem(sys.modules, "bitsandbytes", ModuleType("bitsandbytes"))
    assert resources.bitsandbytes_available() is True


@pytest.mark.parametrize(("train", "data", "advice"), [
    ({"batch_size": 8}, {}, "lower train.batch_size from 8 to 4"),
    ({"batch_size": 1}, {"max_length": 512}, "lower data.max_length from 512"),
    ({"batch_size": 1}, {"max_length": 64}, "turn on train.gradient_checkpointing"),
    ({"batch_size": 1, "gradient_checkpointing": True}, {"max_length": 64}, "pick a smaller base model"),
])
def test_oom_message_names_the_setting_to_change(train, data, advice):
    message = resources.oom_message(StudioSettings.from_dict({"train": train, "data": data}))
    assert message.startswith("Training ran out of memory; ") and advice in message and message.endswith(".")


def test_the_disk_estimate_counts_the_snapshots():
    none, four = resources.checkpoint_disk_bytes(1_000_000), resources.checkpoint_disk_bytes(1_000_000, snapshots=4)
    assert four - none == 4 * 1_000_000 * 4  # four fp32 adapters, no optimizer state
