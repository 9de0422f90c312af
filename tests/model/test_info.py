"""Model facts: default LoRA targets, parameter counts, FLOPs, time estimates (studio.model.info)."""
from __future__ import annotations

import pytest
from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

from studio.model.info import default_target_modules, estimate_epoch_seconds, model_info


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
