"""The answer loss's arithmetic: the model's own fp32 weights, or a bf16 copy where the CPU multiplies bf16 natively.

Why: on a CPU the answer loss is arithmetic-bound (one forward pass over every reference token with each model, the
262,144-word head included): on AlpacaEval (`python -m bench owndata`) its 3.5 TFLOP would take 18 s even at the
fp32 GEMM ceiling, 11% of the rest of Compare. A CPU with AVX512-BF16 or AMX-BF16 multiplies bf16 at about twice
the fp32 rate (426 against 198 GFLOP/s on these 2 cores), and Compare's answer loss took 14.0 s in bf16 there
(26.1 s in fp32 the same day): 8% of the rest of Compare. bf16 is how evaluation harnesses read most models (Gemma 3
was trained in it). Against fp32 on the same 43 references, base and tuned: each example's mean loss within 0.016
nats (standard deviation 0.005, below the 0.01 that counts a change as "the same"), the corpus loss within 0.0023
nats (perplexities 6.83 -> 5.52 in fp32, 6.83 -> 5.54 in bf16), the per-example better/same/worse counts
unchanged. `generation.answer_loss_precision` says which: `auto` (bf16 on such a CPU when the weights are fp32, else
the model's own), `fp32` (the model's own weights, exact up to summation order) or `bf16`. Generation never changes:
answers always come from the model's own weights.

The copy is made once per Compare and held by its answer loss (540 MB for the embedded model), the decoder's
parameters only: buffers (rotary frequencies) stay as they are. It is read through `torch.func.functional_call`,
under the model's lock as every other reader (`sharing.using`), so nothing else sees the swap.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from studio.errors import SettingsError
from studio.train.trainer import causal_parts

PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16, as Linux reports its flags)."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", info) is not None


@dataclass
class ScoringWeights:
    """A copy of a model's decoder parameters and output head in another dtype, for reading the answer loss."""

    dtype: torch.dtype
    decoder: dict[str, torch.Tensor]  # the decoder's named parameters, cast
    head: torch.Tensor
    head_bias: torch.Tensor | None


def dtype_name(dtype: torch.dtype) -> str:
    """'bf16', 'fp16' or 'fp32' (else torch's own name)."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}.get(dtype, str(dtype))


def wants_bf16(model: Any, precision: str) -> bool:
    """Whether `precision` reads this model's answer loss in bf16: asked for, or `auto` on a CPU with native bf16,
    and only when every weight is fp32 (a 4-bit or half-precision model reads with its own)."""
    if precision not in PRECISIONS:
        raise SettingsError(f"generation.answer_loss_precision must be one of {', '.join(PRECISIONS)}, "
                            f"not {precision!r}.")
    if precision == "fp32":
        return False
    if any(p.dtype != torch.float32 for p in model.parameters()):
        return False
    return precision == "bf16" or (model.device.type == "cpu" and native_bf16())


def scoring_weights(model: Any, precision: str) -> ScoringWeights | None:
    """The bf16 copy `precision` asks for on this model, or None: read with the model's own weights."""
    if not wants_bf16(model, precision):
        return None
    decoder, head, _, _ = causal_parts(model)
    if type(head) is not nn.Linear:
        return None
    cast: dict[int, torch.Tensor] = {}  # by storage: a head tied to the embeddings is copied once

    def copy(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in cast:
            cast[t.data_ptr()] = t.detach().to(torch.bfloat16)
        return cast[t.data_ptr()]

    with torch.no_grad():
        params = {name: copy(p) for name, p in decoder.named_parameters()}
        return ScoringWeights(torch.bfloat16, params, copy(head.weight),
                              None if head.bias is None else copy(head.bias))


def precision_name(model: Any, weights: ScoringWeights | None) -> str:
    """The precision the answer loss was read in: the copy's, else the model's own weights'."""
    return dtype_name(weights.dtype if weights is not None else next(model.parameters()).dtype)


def run_decoder(decoder: nn.Module, weights: ScoringWeights | None, **kwargs: Any) -> Any:
    """The decoder's forward, with `weights`' parameters in place of its own when given."""
    if weights is None:
        return decoder(**kwargs)
    return functional_call(decoder, weights.decoder, args=(), kwargs=kwargs, strict=False)
