"""Facts about a model: readable names, parameter counts, memory, FLOPs per token, LoRA targets, time estimates."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from studio.settings import EMBEDDED_MODEL

# Sustained fp32 throughput of LoRA training on the reference 2-core CPU, in FLOP/s, for estimates before a run:
# `python -m bench` measures the GEMM ceiling and the studio's share of it (MFU) in the README's performance block.
CPU_TRAIN_FLOPS = 70e9
ANSWER_SHARE = 0.25  # typical share of trained (answer) tokens, which alone go through the output head


@dataclass
class ModelInfo:
    """Size and cost facts about a model, for the UI and time estimates."""

    architecture: str
    n_params: int
    n_trainable: int
    memory_bytes: int
    vocab_size: int
    hidden_size: int
    n_layers: int
    flops_per_token_forward: int
    lm_head_share: float


def model_title(name: str) -> str:
    """A readable model name: "Gemma 3 270M" for the embedded model, else the id or folder as given."""
    return "Gemma 3 270M" if name == EMBEDDED_MODEL else name


def model_info(model: nn.Module) -> ModelInfo:
    """Parameter counts, memory and FLOPs of a model.

    flops_per_token_forward = 2 * N_non_embedding + 2 * hidden * vocab, where N_non_embedding excludes the input
    embedding and an untied output head (a lookup costs no FLOPs; the head's matmul is the 2*hidden*vocab term).
    """
    params = {id(p): p for p in model.parameters()}.values()  # tied weights counted once
    n_params = sum(p.numel() for p in params)
    n_trainable = sum(p.numel() for p in params if p.requires_grad)
    memory = sum(p.numel() * p.element_size() for p in params)
    memory += sum(b.numel() * b.element_size() for b in model.buffers())
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    vocab, hidden = embed.weight.shape
    untied = head is not None and head.weight is not embed.weight
    n_embedding = embed.weight.numel() + (head.weight.numel() if untied else 0)
    head_flops = 2 * hidden * vocab
    flops = 2 * (n_params - n_embedding) + head_flops
    return ModelInfo(
        architecture=type(_unwrap(model)).__name__, n_params=n_params, n_trainable=n_trainable,
        memory_bytes=memory, vocab_size=vocab, hidden_size=hidden,
        n_layers=int(getattr(config, "num_hidden_layers", 0) or 0),
        flops_per_token_forward=flops, lm_head_share=head_flops / flops,
    )


def estimate_epoch_seconds(info: ModelInfo, n_tokens: int, tokens_per_second: float | None = None) -> float:
    """Seconds for one pass over n_tokens: at a measured speed if given, else from FLOPs at CPU_TRAIN_FLOPS."""
    if tokens_per_second:
        return n_tokens / tokens_per_second
    # LoRA forward + backward is ~2x the forward (frozen weights need input gradients only); the fast loss runs
    # the head only on answer tokens, about a quarter of them (measured tokens/s: `python -m bench`).
    head = info.lm_head_share * info.flops_per_token_forward
    per_token = 2 * (info.flops_per_token_forward - head) + 2 * head * ANSWER_SHARE
    return n_tokens * per_token / CPU_TRAIN_FLOPS


def default_target_modules(model: nn.Module) -> list[str]:
    """Leaf names of every linear layer except the output head, e.g. q_proj ... down_proj or query_key_value."""
    from transformers.pytorch_utils import Conv1D

    base = _unwrap(model)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    names: set[str] = set()
    for full_name, module in base.named_modules():
        parts = full_name.split(".")
        if any(part.startswith("lora_") for part in parts):  # LoRA's own A/B layers on an already-wrapped model
            continue
        leaf = parts[-2] if parts[-1] == "base_layer" and len(parts) > 1 else parts[-1]
        if module is head or leaf in {"lm_head", "embed_out", "output"}:
            continue
        if isinstance(module, (nn.Linear, Conv1D)):
            names.add(leaf)
    return sorted(names)


def _unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
