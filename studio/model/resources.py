"""Will this run fit? Memory and disk estimates for LoRA training, checked against what the machine has free.

The estimate is deliberately rough (within tens of percent), enough to refuse a run that cannot fit before it
spends minutes loading a model, and to name the setting to change when one runs out of memory anyway.

Per component, for N base parameters, P LoRA parameters, b sequences of s tokens, hidden size d, L layers:
  weights      N * 4 bytes (the studio loads fp32), or 4-bit QLoRA: linear layers N_lin * 0.5 + embeddings fp32
  lora         P * (4 weight + 4 gradient) bytes; P = r * L * (sum over adapted layers of in + out features)
  optimizer    AdamW keeps two fp32 moments per trained parameter: P * 8 bytes
  activations  b * s * d * L * 17 values (34 bytes in 16-bit: Korthikanti et al. 2022, without attention scores),
               twice that in fp32; with checkpointing, each layer's input plus one layer being recomputed
  logits       b * positions * vocab * 4 bytes * 2 (fp32 logits and their gradient); the fast loss only
               projects the completion positions, taken here as half the sequence
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psutil
import torch

from studio.errors import SettingsError
from studio.settings import StudioSettings

GB = 1e9
ACTIVATION_VALUES = 17  # kept per token, layer and hidden unit (34 bytes in 16-bit, Korthikanti et al. 2022)
OPTIMIZER_BYTES = {"adamw_torch_fused": 8, "adamw_torch": 8, "adafactor": 4, "sgd": 0}  # per trained parameter
# (in + out) features of each adapted layer, in units of the hidden size d, for a Llama/Gemma-style block with an
# MLP about 4x wider than d; unknown names count as a square layer.
LAYER_WIDTHS = {"q_proj": 2, "k_proj": 2, "v_proj": 2, "o_proj": 2, "gate_proj": 5, "up_proj": 5, "down_proj": 5}
KEPT_CHECKPOINTS = 3  # save_total_limit=2 plus the one being written
TIGHT = 0.85  # above this share of the free memory a run may still fit, but warn


def _shape(model: Any) -> tuple[int, int, int, int]:
    """(parameters, hidden size, layers, vocabulary) from a ModelInfo, or guessed from a parameter count."""
    if not isinstance(model, int):
        return model.n_params, model.hidden_size, model.n_layers, model.vocab_size
    # A transformer has about 12 * L * d^2 parameters; typical shapes keep L near d / 64, so d ~ (N * 16 / 3)^(1/3).
    hidden = max(64, round((model * 16 / 3) ** (1 / 3)))
    return model, hidden, max(1, hidden // 64), 32_000


def lora_parameters(hidden: int, layers: int, settings: StudioSettings) -> int:
    """LoRA parameters: rank times the in + out features of every adapted layer (all linear ones when unset)."""
    names = settings.lora.target_modules or list(LAYER_WIDTHS)
    return settings.lora.r * layers * hidden * sum(LAYER_WIDTHS.get(name, 2) for name in names)


def _activation_bytes(settings: StudioSettings, hidden: int, layers: int, vocab: int, device: str) -> tuple[int, int]:
    """(activation bytes, logits bytes) of one micro-batch."""
    t, tokens = settings.train, settings.train.batch_size * settings.data.max_length
    element = 4 if device == "cpu" or t.precision == "fp32" else 2
    if t.gradient_checkpointing:
        # Each layer's input is kept, plus one layer's full activations while it is recomputed.
        activations = tokens * hidden * element * (layers + ACTIVATION_VALUES)
    else:
        activations = tokens * hidden * element * layers * ACTIVATION_VALUES
    positions = tokens // 2 if t.fast_loss else tokens
    return activations, positions * vocab * 4 * 2


def memory_estimate(model: Any, settings: StudioSettings, device: str = "cpu") -> dict[str, int]:
    """Bytes LoRA training needs (weights, LoRA, optimizer, activations, logits, total) for a ModelInfo or count."""
    n_params, hidden, layers, vocab = _shape(model)
    if settings.train.load_in_4bit:
        embedding = vocab * hidden  # bitsandbytes quantises the linear layers; embeddings stay in the load dtype
        weights = (n_params - embedding) // 2 + embedding * 4
    else:
        weights = n_params * 4
    lora = lora_parameters(hidden, layers, settings)
    activations, logits = _activation_bytes(settings, hidden, layers, vocab, device)
    optimizer = lora * OPTIMIZER_BYTES.get(settings.train.optimizer, 8)
    subtotal = weights + lora * 8 + optimizer + activations + logits
    return {
        "weights_bytes": weights, "lora_params": lora, "lora_bytes": lora * 8, "optimizer_bytes": optimizer,
        "activation_bytes": activations, "logits_bytes": logits,
        # Allocator fragmentation, temporary buffers and the framework itself: about a tenth on top.
        "total_bytes": int(subtotal * 1.1),
    }


def checkpoint_disk_bytes(lora_params: int, snapshots: int = 0) -> int:
    """Disk for the checkpoints kept during training (adapter + optimizer state each), the final adapter and the
    adapter-only snapshots (train.snapshots)."""
    per_checkpoint = lora_params * (4 + 8)
    adapters = (1 + snapshots) * lora_params * 4
    return KEPT_CHECKPOINTS * per_checkpoint + adapters + 50_000_000  # 50 MB: tokenizer copies, logs


def free_memory_bytes(device: str) -> int:
    """Memory free for training now: available RAM on a CPU, free VRAM of the current GPU on CUDA."""
    if device == "cuda":
        return int(torch.cuda.mem_get_info()[0])
    return int(psutil.virtual_memory().available)


def bitsandbytes_available() -> bool:
    """Whether the bitsandbytes package (4-bit QLoRA) can be imported."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def check_four_bit(settings: StudioSettings, device: str) -> None:
    """Raise SettingsError when 4-bit QLoRA is asked for without CUDA or without bitsandbytes."""
    if not settings.train.load_in_4bit:
        return
    if device != "cuda" or not torch.cuda.is_available():
        raise SettingsError("train.load_in_4bit (QLoRA) needs a CUDA GPU; turn it off on this machine.")
    if not bitsandbytes_available():
        raise SettingsError("train.load_in_4bit needs the bitsandbytes package; install it or turn it off.")


def _gb(n: float) -> str:
    return f"{n / GB:.1f} GB"


def _memory_finding(settings: StudioSettings, need: int, free: int, device: str) -> tuple[bool, str] | None:
    """(blocking, sentence) when the estimate does not fit, or fits only just; None when it fits."""
    what = "GPU memory" if device == "cuda" else "memory"
    if need > free:
        return True, (f"Training needs about {_gb(need)} of {what} but only {_gb(free)} is free; "
                      f"{_lower_what(settings)}.")
    if need > TIGHT * free:
        return False, (f"Training needs about {_gb(need)} of the {_gb(free)} of {what} free, so it may run out; "
                       f"{_lower_what(settings)} if it does.")
    return None


def _disk_finding(need: int, folder: Path) -> tuple[bool, str] | None:
    """(blocking, sentence) when the runs folder's disk lacks room for the checkpoints."""
    folder = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    free = shutil.disk_usage(folder).free
    if need > free:
        return True, (f"Training needs about {_gb(need)} of disk for checkpoints but only {_gb(free)} is free "
                      "where runs are saved; delete old runs or free some space.")
    return None


def resource_findings(
    settings: StudioSettings, model: Any, device: str = "cpu", runs_root: Path | None = None,
) -> list[tuple[bool, str]]:
    """(blocking, sentence) for each resource that is short; 4-bit without CUDA/bitsandbytes raises SettingsError."""
    check_four_bit(settings, device)
    estimate = memory_estimate(model, settings, device)
    findings = [_memory_finding(settings, estimate["total_bytes"], free_memory_bytes(device), device)]
    if runs_root is not None:
        need = checkpoint_disk_bytes(estimate["lora_params"], settings.train.snapshots)
        findings.append(_disk_finding(need, Path(runs_root)))
    return [f for f in findings if f is not None]


def check_resources(
    settings: StudioSettings, model: Any, device: str = "cpu", runs_root: Path | None = None,
) -> list[str]:
    """One sentence per resource that is short (refusals and warnings) for a ModelInfo or parameter count."""
    return [sentence for _, sentence in resource_findings(settings, model, device, runs_root)]


def blocking_problem(
    settings: StudioSettings, model: Any, device: str = "cpu", runs_root: Path | None = None,
) -> str | None:
    """The first finding that should stop the run from starting, or None when it can start."""
    return next((s for blocking, s in resource_findings(settings, model, device, runs_root) if blocking), None)


def _lower_what(settings: StudioSettings) -> str:
    """The settings change that saves the most memory from where these settings are."""
    t, d = settings.train, settings.data
    if t.batch_size > 1:
        half = t.batch_size // 2
        return (f"lower train.batch_size from {t.batch_size} to {half} (and raise train.grad_accum to "
                f"{t.grad_accum * 2} to keep the same effective batch) or data.max_length")
    if d.max_length > 128:
        return f"lower data.max_length from {d.max_length} or turn on train.gradient_checkpointing"
    if not t.gradient_checkpointing:
        return "turn on train.gradient_checkpointing"
    return "pick a smaller base model"


def oom_message(settings: StudioSettings) -> str:
    """The sentence shown when training ran out of memory, naming the setting to change."""
    return f"Training ran out of memory; {_lower_what(settings)}."
