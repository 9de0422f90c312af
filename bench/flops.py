"""FLOPs arithmetic of the bench and the GEMM ceiling it is measured against.

Training FLOPs of one micro-batch of LoRA fine-tuning (frozen base weights, fp32), counting a multiply-add as 2:

    body:      4 * N_body * P        forward 2*N_body per position, backward 2*N_body (input gradients only:
                                     frozen weights need no weight gradient)
    LoRA:      6 * N_lora * P        forward 2, backward 4 (input and weight gradients of the adapter)
    attention: 12 * L * d_attn * sum over sequences of T*(T+1)/2
                                     scores and weighted values, 4*d_attn per attended pair forward, backward 2x;
                                     causal over the padded length T each contender runs
    head:      4 * H * V * P_head    logits forward 2*H*V, backward 2*H*V (tied embedding frozen: input grad only)

P = positions the decoder runs (padding included: it is computed), P_head = positions projected through the output
head: only trained positions for the studio, every position for TRL on a CPU and for the tutorial Trainer.
Recomputation is not counted (TRL's gradient checkpointing reruns the body forward, +2*N_body*P, and its chunked
head recomputes the logits in backward, +2*H*V*P_head): MFU here is model FLOPs / time / GEMM ceiling. The first
layer's q/k/v/gate/up inputs need no gradient (the embedding is frozen), which the body term ignores (<3%).
N_body counts the base weights of every linear layer of the decoder (Gemma 3 270M: 100M of its 268M parameters;
the other 168M are the 262,144 x 640 embedding, reused as the head).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelShape:
    """What the FLOPs formula needs to know about a decoder."""

    n_body: int  # weights of the decoder's linear layers (LoRA adapters excluded)
    hidden: int
    vocab: int
    layers: int
    attn_width: int  # query heads x head dim


def model_shape(model: nn.Module) -> ModelShape:
    """The shape of a (PEFT-wrapped) causal LM: body weights, hidden size, vocabulary, layers, attention width."""
    from studio.train.trainer import causal_parts

    decoder, head, _, _ = causal_parts(model)
    n_body = sum(m.weight.numel() for name, m in decoder.named_modules()
                 if isinstance(m, nn.Linear) and "lora_" not in name)
    base = model
    while hasattr(base, "get_base_model") and base.get_base_model() is not base:
        base = base.get_base_model()
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return ModelShape(n_body=n_body, hidden=head.weight.shape[1], vocab=head.weight.shape[0],
                      layers=config.num_hidden_layers, attn_width=heads * head_dim)


def lora_parameters(model: nn.Module) -> int:
    """Trainable parameters (the LoRA adapter)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def training_flops(shape: ModelShape, n_lora: int, positions: int, head_positions: int, lengths: list[int]) -> float:
    """Model FLOPs of one training step (see the module docstring for every term)."""
    attention_pairs = sum(t * (t + 1) / 2 for t in lengths)
    return (4 * shape.n_body * positions + 6 * n_lora * positions
            + 12 * shape.layers * shape.attn_width * attention_pairs
            + 4 * shape.hidden * shape.vocab * head_positions)


def scoring_flops(shape: ModelShape, n_lora: int, batches: list[list[int]], head_positions: int) -> float:
    """Model FLOPs of one forward pass over right-padded batches (each a list of sequence lengths), the head only at
    `head_positions`: the answer loss of one model (forward terms of the training formula; `n_lora` 0 for the base)."""
    positions = sum(len(b) * max(b) for b in batches if b)
    attention_pairs = sum(len(b) * max(b) * (max(b) + 1) / 2 for b in batches if b)
    return (2 * shape.n_body * positions + 2 * n_lora * positions
            + 4 * shape.layers * shape.attn_width * attention_pairs
            + 2 * shape.hidden * shape.vocab * head_positions)


def gemm_flops_per_second(size: int = 2048, threads: int | None = None, repeats: int = 3,
                          dtype: str = "fp32") -> float:
    """Best torch.matmul rate of two size x size matrices (2*size^3 FLOPs each; fp32, or bf16) with `threads` torch
    threads.

    Measured on a thread of its own, which ends with it: OpenMP workers left on the caller's thread would slow a
    training thread started after it (`studio.model.threads.on_own_thread`).
    """
    from studio.model.threads import on_own_thread

    return on_own_thread(_gemm_rate, size, threads, repeats, {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype])


def _gemm_rate(size: int, threads: int | None, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        torch.matmul(a, b)  # warm-up: first call allocates and picks kernels
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - start)
        return 2 * size**3 / best
    finally:
        torch.set_num_threads(previous)
