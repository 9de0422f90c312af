"""The output head and its cross-entropy in one pass over the head's weights (training on a CPU).

Why: Gemma 3's head is 262,144 x 640 floats (671 MB). With logits only at the trained positions (a few dozen rows a
step), its matrix products are bound by memory, not arithmetic: the forward reads the whole matrix to make the logits
and the backward reads it again for the hidden states' gradient (a profile of a training step shows these two
products running well below the GEMM rate of the decoder's; `python -m bench levers` measures what fusing them is
worth, the README's levers table). The head is frozen, and the gradient of a summed cross-entropy with respect to
the hidden states is fixed once the logits are known:

    d loss / d h = scale * sum_v (softmax_v - onehot_v) * cap'_v * W_v

so it can be accumulated chunk by chunk in the forward pass, with the running-maximum rescaling of an online softmax,
while each chunk of W is still in the cache. One read of W from memory instead of two, and no (n x V) logits kept for
the backward. The loss and gradient are the standard ones up to float rounding (tests/train/test_fused_head.py).
"""
from __future__ import annotations

import torch
from torch import nn

# Rows of W per chunk: 1,024 x 640 floats (2.6 MB) stay in the cache between the chunk's two products. Smaller
# chunks pay per-call overhead, larger ones fall out of cache; `python -m bench levers` measures the whole lever.
CHUNK_ROWS = 1024


def fused_head_applies(head: nn.Module, hidden: torch.Tensor) -> bool:
    """True where the fused path computes exactly what the head would: a frozen plain Linear in fp32 on a CPU."""
    return (type(head) is nn.Linear and not head.weight.requires_grad
            and (head.bias is None or not head.bias.requires_grad)
            and hidden.device.type == "cpu" and hidden.dtype == head.weight.dtype == torch.float32)


def head_cross_entropy_sum(hidden: torch.Tensor, head: nn.Linear, targets: torch.Tensor, cap: float | None,
                           scale: float, chunk_rows: int = CHUNK_ROWS) -> torch.Tensor:
    """Summed cross-entropy of `targets` under `cap * tanh(scale * head(hidden) / cap)` (no cap: `scale * head`),
    its gradient with respect to `hidden` computed in the same pass over the head's weights."""
    return _HeadCrossEntropy.apply(hidden, head.weight, head.bias, targets, cap, scale, chunk_rows)


def _logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, cap: float | None,
            scale: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits of `hidden` against rows `weight` as the model makes them, and their soft-cap slope."""
    product = hidden @ weight.T if bias is None else torch.addmm(bias, hidden, weight.T)
    return _scaled_and_capped(product.float(), cap, scale)  # a bf16 product's logits in fp32; fp32's as they are


def _logits_of_rows(hidden: torch.Tensor, rows: torch.Tensor, bias: torch.Tensor | None, cap: float | None,
                    scale: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each hidden state's logit for its own row (the target's), and the soft-cap's slope there."""
    products = (hidden * rows).sum(dim=1)
    return _scaled_and_capped(products if bias is None else products + bias, cap, scale)


def _scaled_and_capped(logits: torch.Tensor, cap: float | None,
                       scale: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`cap * tanh(scale * logits / cap)` and d/d(scale * logits) of it (None without a cap: the slope is 1)."""
    if scale != 1.0:
        logits = logits * scale
    if not cap:
        return logits, None
    squashed = torch.tanh(logits / cap)
    return squashed * cap, 1 - squashed * squashed


def head_cross_entropy_rows(hidden: torch.Tensor, head: nn.Linear, targets: torch.Tensor, cap: float | None,
                            scale: float, chunk_rows: int = CHUNK_ROWS) -> torch.Tensor:
    """Each row's cross-entropy of its target, one pass over the head's weights and no (n x V) logits (no gradient).

    Scoring only (the held-out answer loss): the online softmax of the training pass without its gradient. The plain
    head writes a few hundred rows' logits at once (268 MB for 256 rows) and reads them again for the softmax; chunked,
    each slice is still in the cache (`python -m bench owndata` times the answer loss both ways).
    """
    return weight_cross_entropy_rows(hidden, head.weight, head.bias, targets, cap, scale, chunk_rows)


def weight_cross_entropy_rows(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                              targets: torch.Tensor, cap: float | None, scale: float,
                              chunk_rows: int = CHUNK_ROWS) -> torch.Tensor:
    """`head_cross_entropy_rows` for a head given as its weight (and bias), in the hidden states' dtype: products in
    that dtype (bf16: the answer loss's copy, `studio.evaluate.precision`), the softmax always in fp32."""
    with torch.no_grad():
        running_max, total = _online_softmax(hidden, weight, bias, cap, scale, chunk_rows, weighted=None)
        wide = hidden.float()
        target_logit, _ = _logits_of_rows(wide, weight[targets].float(),
                                          None if bias is None else bias[targets].float(), cap, scale)
        return running_max.squeeze(1) + torch.log(total.squeeze(1)) - target_logit


def _online_softmax(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, cap: float | None,
                    scale: float, chunk_rows: int,
                    weighted: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's maximum logit and sum of exp(logit - maximum) over the vocabulary, a chunk of W at a time; when
    given, `weighted` accumulates sum_v exp(logit_v - maximum) * cap'_v * W_v (the gradient's term) alongside."""
    n = hidden.shape[0]
    running_max = hidden.new_full((n, 1), float("-inf"), dtype=torch.float32)
    total = hidden.new_zeros((n, 1), dtype=torch.float32)
    for start in range(0, weight.shape[0], chunk_rows):
        rows = weight[start:start + chunk_rows]
        logits, slope = _logits(hidden, rows, None if bias is None else bias[start:start + chunk_rows], cap, scale)
        new_max = torch.maximum(running_max, logits.amax(dim=1, keepdim=True))
        rescale = torch.exp(running_max - new_max)
        probs = logits.sub_(new_max).exp_()  # in place: this loop runs 256 times a step
        total.mul_(rescale).add_(probs.sum(dim=1, keepdim=True))
        if weighted is not None:
            weighted.mul_(rescale).addmm_(probs if slope is None else probs.mul_(slope), rows)
        running_max = new_max
    return running_max, total


class _HeadCrossEntropy(torch.autograd.Function):
    """Forward: the summed loss, with d loss / d hidden accumulated alongside; backward: that gradient, scaled."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, cap, scale, chunk_rows):  # noqa: D102 (autograd's signature)
        weighted = hidden.new_zeros(hidden.shape)  # sum_v exp(logit_v - running_max) * cap'_v * W_v
        running_max, total = _online_softmax(hidden, weight, bias, cap, scale, chunk_rows, weighted)
        target_rows = weight[targets]
        target_logit, target_slope = _logits_of_rows(hidden, target_rows, None if bias is None else bias[targets],
                                                     cap, scale)
        loss = (running_max.squeeze(1) + torch.log(total.squeeze(1)) - target_logit).sum()
        target_term = target_rows if target_slope is None else target_rows * target_slope.unsqueeze(1)
        ctx.save_for_backward((weighted / total - target_term) * scale)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):  # noqa: D102
        (grad_hidden,) = ctx.saved_tensors
        return grad_hidden * grad_loss, None, None, None, None, None, None

