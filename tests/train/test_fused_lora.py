"""The fused LoRA forward gives peft's outputs and gradients, and only inside its block."""
from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model

from studio.train.fused_lora import fused_lora, lora_linears
from tests.tiny import make_tiny_model


def _lora_model(tokenizer, dropout: float = 0.0):
    model = get_peft_model(make_tiny_model(tokenizer), LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout,
                                                                  target_modules="all-linear"))
    for layer in lora_linears(model):  # a trained-looking adapter: B is zero right after initialisation
        torch.nn.init.normal_(layer.lora_B["default"].weight, std=0.1)
    return model


def _loss_and_grads(model, ids):
    model.zero_grad()
    loss = model(input_ids=ids).logits.square().mean()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]


def test_fused_forward_matches_peft_and_is_undone_after(tiny_tokenizer):
    model, ids = _lora_model(tiny_tokenizer), torch.tensor([[2, 10, 11, 12, 13, 14]])
    model.train()
    plain_loss, plain_grads = _loss_and_grads(model, ids)
    with fused_lora(model) as fused:
        assert fused == len(lora_linears(model)) == 14  # 7 linear layers x 2 layers
        fused_loss, fused_grads = _loss_and_grads(model, ids)
    torch.testing.assert_close(fused_loss, plain_loss)
    for a, b in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert all("forward" not in vars(layer) for layer in lora_linears(model))


def test_disabled_adapter_and_switched_off_fusion_take_peft_path(tiny_tokenizer):
    model, ids = _lora_model(tiny_tokenizer), torch.tensor([[2, 10, 11, 12]])
    model.eval()
    with torch.no_grad():
        with model.disable_adapter():
            base = model(input_ids=ids).logits
        with fused_lora(model), model.disable_adapter():
            assert torch.equal(model(input_ids=ids).logits, base)  # the base weights, exactly
        with fused_lora(model, enabled=False) as fused:
            assert fused == 0
