"""Loading base models (cache, folders, Hub errors) and model facts, with tiny in-process models."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

from studio import embedded, modeling
from studio.errors import HubUnavailableError, ModelError
from studio.modeling import (
    default_target_modules,
    estimate_epoch_seconds,
    load_base_model,
    model_info,
    studio_home,
)
from studio.settings import EMBEDDED_MODEL, ModelSettings
from tests.tiny import make_tiny_model


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_studio_home_follows_the_environment(home, monkeypatch):
    assert studio_home() == home
    monkeypatch.delenv("STUDIO_HOME")
    assert studio_home() == Path.home() / ".cache" / "instruction-tuning-studio"


def test_default_targets_for_gemma3_are_all_linear_layers_but_the_head(tiny_model):
    assert default_target_modules(tiny_model) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj",
                                                  "v_proj"]


def test_default_targets_for_gpt_neox_include_query_key_value():
    config = GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64)
    targets = default_target_modules(GPTNeoXForCausalLM(config))
    assert targets == ["dense", "dense_4h_to_h", "dense_h_to_4h", "query_key_value"]


def test_default_targets_for_gpt2_use_its_conv1d_layers():
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=2, n_positions=64))
    assert default_target_modules(model) == ["c_attn", "c_fc", "c_proj"]


def test_default_targets_see_through_an_existing_lora(tiny_model):
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(tiny_model, LoraConfig(r=2, target_modules=["q_proj"]))
    assert "q_proj" in default_target_modules(wrapped) and "lora_A" not in default_target_modules(wrapped)


def test_model_info_counts_tied_weights_once_and_states_flops(tiny_model):
    info = model_info(tiny_model)
    unique = sum(p.numel() for p in {id(p): p for p in tiny_model.parameters()}.values())
    embed = tiny_model.get_input_embeddings().weight
    assert tiny_model.get_output_embeddings().weight is embed  # tied, like Gemma 3
    assert info.n_params == unique == info.n_trainable
    assert info.memory_bytes >= unique * 4
    assert (info.vocab_size, info.hidden_size, info.n_layers) == (embed.shape[0], 32, 2)
    head = 2 * 32 * embed.shape[0]
    assert info.flops_per_token_forward == 2 * (unique - embed.numel()) + head
    assert info.lm_head_share == pytest.approx(head / info.flops_per_token_forward)
    assert info.architecture == "Gemma3ForCausalLM"


def test_epoch_estimate_uses_measured_speed_when_given(tiny_model):
    info = model_info(tiny_model)
    assert estimate_epoch_seconds(info, 600, tokens_per_second=60) == 10
    assert estimate_epoch_seconds(info, 600) > 0


def _save_tiny(folder: Path, tokenizer) -> Path:
    model = make_tiny_model(tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_local_folder_loads_in_fp32_with_a_pad_token(tmp_path, tiny_tokenizer):
    folder = _save_tiny(tmp_path / "tiny", tiny_tokenizer)
    loaded = load_base_model(ModelSettings(model=str(folder)), for_training=False)
    assert loaded.source == "local" and not loaded.from_cache
    assert loaded.model.dtype == torch.float32 and not loaded.model.training
    assert loaded.tokenizer.pad_token is not None


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

    not_found = modeling._translate_load_error(OSError("x is not a local folder and is not a valid model"), "x/y")
    assert isinstance(not_found, ModelError) and "not found" in str(not_found)
    wrong_kind = modeling._translate_load_error(ValueError("Unrecognized configuration class Foo"), "x/y")
    assert isinstance(wrong_kind, ModelError) and "causal language model" in str(wrong_kind)
    offline = modeling._translate_load_error(OSError("We couldn't connect to 'https://huggingface.co'"), "x/y")
    assert isinstance(offline, HubUnavailableError)
    assert issubclass(RepositoryNotFoundError, Exception)


def test_embedded_cache_is_built_once_atomically_and_reused(home, tiny_tokenizer, monkeypatch):
    calls = []

    def fake_build(out: Path) -> None:
        calls.append(out)
        assert not modeling.embedded_cache_dir().exists()  # written elsewhere, renamed at the end
        _save_tiny(out, tiny_tokenizer)

    monkeypatch.setattr(embedded, "_build_embedded_copy", fake_build)
    threads = [threading.Thread(target=modeling.ensure_embedded_cache) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    loaded = load_base_model(ModelSettings(model=EMBEDDED_MODEL))
    assert loaded.source == "embedded" and loaded.from_cache
    assert loaded.tokenizer("Uppercase the word.")["input_ids"] == tiny_tokenizer("Uppercase the word.")["input_ids"]
    assert sorted(p.name for p in modeling.embedded_cache_dir().parent.iterdir() if not p.name.endswith(".lock")) == [
        embedded.EMBEDDED_CACHE_NAME]
