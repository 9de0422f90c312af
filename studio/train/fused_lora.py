"""Fused LoRA linear layers for training: `base(x) + scale * B(A(x))` as one `addmm` instead of three passes.

peft's LoRA `Linear.forward` computes the base output, the low-rank product, multiplies it by the scale and adds it:
two extra passes over every (tokens x out_features) output in the forward and one more in the backward, for each of
the 126 adapted layers of Gemma 3 270M. `torch.addmm(base, h, B.T, alpha=scale)` folds the scale and the sum into
the matrix product's own output. Same adapter, same weights, same saved file; only the order of two float
operations differs (the scale is applied inside the product rather than after it).

Only the plain case is fused (one active adapter, not merged, adapter enabled, no DoRA or other variant, no extra
arguments); anything else takes peft's own forward, so `disable_adapter()` (the base model in Compare) is untouched.
"""
from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


def _fused_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """peft lora.Linear.forward with the plain case fused (see the module docstring)."""
    active = self.active_adapters
    if (args or kwargs or self.disable_adapters or self.merged or len(active) != 1 or active[0] not in self.lora_A
            or active[0] in self.lora_variant or not isinstance(self.base_layer, nn.Linear)):
        return type(self).forward(self, x, *args, **kwargs)
    name = active[0]
    lora_a, lora_b = self.lora_A[name], self.lora_B[name]
    base = self.base_layer
    hidden = lora_a(self.lora_dropout[name](x.to(lora_a.weight.dtype)))
    out = nn.functional.linear(x, base.weight, base.bias)
    flat = torch.addmm(out.reshape(-1, out.shape[-1]), hidden.reshape(-1, hidden.shape[-1]), lora_b.weight.t(),
                       alpha=self.scaling[name])
    return flat.view(out.shape).to(out.dtype)


def lora_linears(model: nn.Module) -> list[nn.Module]:
    """The peft LoRA Linear layers of a model."""
    from peft.tuners.lora import Linear as LoraLinear

    return [m for m in model.modules() if isinstance(m, LoraLinear)]


@contextlib.contextmanager
def fused_lora(model: nn.Module, enabled: bool = True) -> Iterator[int]:
    """Within the block, every LoRA Linear of `model` runs the fused forward; yields how many layers were fused."""
    layers = lora_linears(model) if enabled else []
    for layer in layers:
        layer.forward = types.MethodType(_fused_forward, layer)  # an instance attribute: the class stays peft's
    try:
        yield len(layers)
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)
