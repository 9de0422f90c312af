"""Shared fixtures: a tiny causal LM and tokenizer built in-process (no download), and temp run folders."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests import tiny
from tests.tiny import make_tiny_model, make_tiny_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A small BPE tokenizer trained on the fly, with <eos>/<pad> like Gemma's."""
    return make_tiny_tokenizer()


@pytest.fixture()
def tiny_model(tiny_tokenizer):
    """A fresh 2-layer Gemma3-style causal LM sized to the tiny tokenizer."""
    return make_tiny_model(tiny_tokenizer)


@pytest.fixture()
def runs_dir(tmp_path):
    """An empty runs/ folder for one test."""
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture()
def tiny_loader():
    """The model loader to inject (`model_loader=`) wherever the studio would load the real base model."""
    return tiny.tiny_loader
