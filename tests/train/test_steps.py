"""Settings become LoraConfig / SFTConfig in one place, and every setting arrives where it should."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from studio.errors import DataError
from studio.settings import StudioSettings
from studio.train.steps import failure_message, features_to_dataset


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch):
    """These tests describe the CPU mapping even on a machine with a GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_features_become_labels_masked_outside_the_answer():
    feats = [
        SimpleNamespace(input_ids=[5, 6, 7, 8], completion_mask=[0, 0, 1, 1]),
        SimpleNamespace(input_ids=[5, 6], completion_mask=[1, 0]),  # nothing to learn after position 0: dropped
    ]
    ds = features_to_dataset(feats, completion_only_loss=True)
    assert ds["labels"] == [[-100, -100, 7, 8]] and ds["length"] == [4]
    full = features_to_dataset(feats, completion_only_loss=False)
    assert full["labels"] == [[5, 6, 7, 8], [5, 6]]


def test_failure_messages_are_one_sentence():
    assert failure_message(DataError("The file is empty."), StudioSettings()) == "The file is empty."
    assert failure_message(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"), StudioSettings()).startswith('Training ran out of memory; lower train.batch_size')
    assert failure_message(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"), StudioSettings()).startswith('Training ran out of memory; lower train.batch_size')
    assert failure_message(MemoryError(), StudioSettings()).startswith('Training ran out of memory; lower train.batch_size')
    message = failure_message(ValueError("bad shape\n  traceback details"), StudioSettings())
    assert message == "Training failed with ValueError: bad shape." and "\n" not in message


def _lora_a(model) -> list[torch.Tensor]:
    return [p.detach().clone() for n, p in model.named_parameters() if "lora_A" in n]


def test_the_seed_alone_decides_the_lora_initialisation(tmp_path, tiny_tokenizer):
    from studio.settings import apply_overrides
    from studio.train.callbacks import BalanceThreads
    from studio.train.steps import build_trainer
    from tests.tiny import make_tiny_model

    rows = features_to_dataset([SimpleNamespace(input_ids=[5, 6, 7, 8], completion_mask=[0, 0, 1, 1])])

    def initial_adapter(seed: int, **train) -> tuple[list[torch.Tensor], list]:
        model = make_tiny_model(tiny_tokenizer)
        torch.rand(int(torch.randint(1, 100, (1,), generator=torch.Generator().manual_seed(seed * 31 + 5))))
        settings = apply_overrides(StudioSettings(), {"train": {"seed": seed, **train}})
        trainer = build_trainer(model, tiny_tokenizer, settings, tmp_path, rows)
        return _lora_a(trainer.model), [type(c) for c in trainer.callback_handler.callbacks]

    (first, callbacks), (again, _) = initial_adapter(1), initial_adapter(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, initial_adapter(2)[0]))
    # Thread balancing is opt-in: a pinned run has no callback that changes the thread count.
    assert BalanceThreads not in callbacks and BalanceThreads in initial_adapter(1, balance_threads=True)[1]
