"""Loading base models (cache, folders, Hub errors) and model facts, with tiny in-process models."""
from __future__ import annotations

import pytest
import torch

from studio.errors import HubUnavailableError, ModelError
from studio.model import loading
from studio.model.loading import load_base_model
from studio.settings import ModelSettings
from tests.tiny import save_tiny_model


def test_local_folder_loads_in_fp32_with_a_pad_token(tmp_path, tiny_tokenizer):
    folder = save_tiny_model(tmp_path / "tiny", tiny_tokenizer)
    loaded = load_base_model(ModelSettings(model=str(folder)), for_training=False)
    assert loaded.source == "local" and not loaded.from_cache
    assert loaded.model.dtype == torch.float32 and not loaded.model.training
    assert loaded.tokenizer.pad_token is not None


def test_the_loaded_model_has_the_fast_head(tmp_path, tiny_tokenizer):
    folder = save_tiny_model(tmp_path / "tiny", tiny_tokenizer)
    head = load_base_model(ModelSettings(model=str(folder)), for_training=False).model.get_output_embeddings()
    assert "forward" in vars(head) and type(head) is torch.nn.Linear  # tests/model/test_head.py: what it does


def test_folder_without_config_is_a_model_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        load_base_model(ModelSettings(model=str(tmp_path / "empty")))
    with pytest.raises(ModelError, match="does not exist"):
        load_base_model(ModelSettings(model=str(tmp_path / "missing")))


def test_folder_with_a_model_that_is_not_a_causal_lm_is_a_model_error(tmp_path):
    from transformers import ViTConfig

    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path / "vit")
    with pytest.raises(ModelError, match="not a causal language model"):
        load_base_model(ModelSettings(model=str(tmp_path / "vit")))


def test_unreachable_hub_is_hub_unavailable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match="cannot be reached") as info:
        load_base_model(ModelSettings(model="studio-tests/no-such-model"), token="hf_secret")
    assert "hf_secret" not in str(info.value)


def test_hub_errors_become_one_sentence():
    from huggingface_hub.errors import RepositoryNotFoundError

    not_found = loading._translate_load_error(OSError("x is not a local folder and is not a valid model"), "x/y")
    assert isinstance(not_found, ModelError) and "not found" in str(not_found)
    wrong_kind = loading._translate_load_error(ValueError("Unrecognized configuration class Foo"), "x/y")
    assert isinstance(wrong_kind, ModelError) and "causal language model" in str(wrong_kind)
    offline = loading._translate_load_error(OSError("We couldn't connect to 'https://huggingface.co'"), "x/y")
    assert isinstance(offline, HubUnavailableError)
    assert issubclass(RepositoryNotFoundError, Exception)


