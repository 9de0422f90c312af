"""A merged model as one GGUF file for llama.cpp and Ollama, written with llama.cpp's own `gguf` package.

The conventions are llama.cpp's converter's (`convert_hf_to_gguf.py`), which transformers undoes when it reads a
GGUF back (`modeling_gguf_pytorch_utils`), so a file written here loads in both:
- tensor names from `gguf.get_tensor_name_map` (`model.layers.0.self_attn.q_proj` -> `blk.0.attn_q`); a tied
  output head is left out (transformers ties it again when `output.weight` is absent);
- Gemma's RMSNorm computes x * (1 + w): llama.cpp stores 1 + w for every `*norm.weight` and transformers
  subtracts 1 on load;
- Llama's Q and K rows are regrouped per rotary pair (llama.cpp's `permute`; transformers reverses it);
- 1-D tensors (norms, biases) stay F32; 2-D weights are F16, or Q8_0 where a row splits into 32-value blocks.
Tokenizer metadata is either copied from a source GGUF (the embedded Gemma 3 arrived as one) or written from a
byte-level BPE tokenizer as llama.cpp's "gpt2" tokenizer (vocabulary, merges, special token ids).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.errors import ExportError

QUANTS = ("f16", "q8_0")
Progress = Callable[[float, str], None]
# (key, value, value type, array item type) as gguf.GGUFWriter.add_key_value takes them
Field = tuple[str, Any, Any, Any]


@dataclass(frozen=True)
class Architecture:
    """How one transformers model type is written: llama.cpp's name for it and the layout changes it needs."""

    title: str
    gguf_arch: str
    norm_offset: float = 0.0  # added to every RMSNorm weight (Gemma stores 1 + w)
    rotary_permute: bool = False  # Llama's Q/K rows regrouped for llama.cpp's rotary layout


# Keyed by config.model_type; each one is read back by transformers' GGUF loader (checked by the tests).
ARCHITECTURES = {
    "gemma3_text": Architecture("Gemma 3", "gemma3", norm_offset=1.0),
    "llama": Architecture("Llama", "llama", rotary_permute=True),
    "qwen2": Architecture("Qwen2", "qwen2"),
}


def supported_titles() -> str:
    """The architectures GGUF export supports, for error messages ("Gemma 3, Llama or Qwen2")."""
    titles = [a.title for a in ARCHITECTURES.values()]
    return ", ".join(titles[:-1]) + f" or {titles[-1]}"


def architecture_of(config: Any) -> Architecture:
    """The Architecture for a model config, or ExportError naming the ones that work."""
    arch = ARCHITECTURES.get(getattr(config, "model_type", ""))
    if arch is None:
        name = (getattr(config, "architectures", None) or [getattr(config, "model_type", "unknown")])[0]
        raise ExportError(f"GGUF export works for {supported_titles()} models, not {name}; "
                          "download the merged model instead.")
    return arch


def check_quant(quant: str) -> str:
    """The quantisation name, or ExportError listing the choices."""
    if quant not in QUANTS:
        raise ExportError(f"Choose a GGUF quantisation of {' or '.join(QUANTS)}, not {quant!r}.")
    return quant


# ---- metadata -------------------------------------------------------------------------------------------------

def _field(key: str, value: Any) -> Field:
    """A metadata field with llama.cpp's types: u32 integers, f32 floats, arrays typed by their first item."""
    import gguf

    t = gguf.GGUFValueType
    scalar = {bool: t.BOOL, int: t.UINT32, float: t.FLOAT32, str: t.STRING}
    if isinstance(value, list):
        item = {str: t.STRING, int: t.INT32, float: t.FLOAT32}[type(value[0])]
        return key, value, t.ARRAY, item
    return key, value, scalar[type(value)], None


def _rope_theta(config: Any) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    params = params.get("full_attention", params)  # Gemma 3 keeps one entry per attention type
    return float(params.get("rope_theta", getattr(config, "rope_theta", None) or 10000.0))


def architecture_fields(config: Any) -> list[Field]:
    """The `<arch>.*` hyperparameters llama.cpp reads, from a transformers config."""
    arch = architecture_of(config)
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    values: dict[str, Any] = {
        "context_length": config.max_position_embeddings, "embedding_length": config.hidden_size,
        "block_count": config.num_hidden_layers, "feed_forward_length": config.intermediate_size,
        "attention.head_count": heads, "attention.head_count_kv": config.num_key_value_heads,
        "attention.layer_norm_rms_epsilon": float(config.rms_norm_eps), "rope.freq_base": _rope_theta(config),
    }
    if arch.gguf_arch == "gemma3":
        values |= {"attention.key_length": head_dim, "attention.value_length": head_dim,
                   "attention.sliding_window": config.sliding_window}
    if arch.gguf_arch == "llama":
        values |= {"vocab_size": config.vocab_size, "rope.dimension_count": head_dim}
        if head_dim != config.hidden_size // heads:
            values |= {"attention.key_length": head_dim, "attention.value_length": head_dim}
    return [_field(f"{arch.gguf_arch}.{key}", value) for key, value in values.items()]


def fields_from_gguf(path: Path, prefixes: tuple[str, ...]) -> list[Field]:
    """The metadata fields of an existing GGUF whose keys start with one of `prefixes`, types kept."""
    # transformers' reader decodes Gemma's 262,144-token vocabulary far faster than gguf.GGUFReader, which walks
    # every array element by element in Python; gguf's reader is the fallback for transformers versions without it.
    try:
        from transformers.integrations.gguf.reader import read_gguf_metadata
    except ImportError:
        read_gguf_metadata = None
    if read_gguf_metadata is None:
        import gguf

        reader = gguf.GGUFReader(str(path))
        return [(key, field.contents(), field.types[0],
                 field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None)
                for key, field in reader.fields.items() if key.startswith(prefixes)]
    metadata, _ = read_gguf_metadata(str(path), ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"))
    # llama.cpp's own types (u32 integers, f32 floats, i32 token types) are what `_field` picks for each value.
    return [_field(key, value) for key, value in metadata.items() if key.startswith(prefixes)]


# ---- tokenizer ------------------------------------------------------------------------------------------------

def _pre_tokenizer_name(pre: dict | None) -> str | None:
    """llama.cpp's name for a byte-level pre-tokenizer: "gpt2" for GPT-2's own split, or a known regex's name."""
    if pre and pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt2"
    steps = (pre or {}).get("pretokenizers") or []
    if len(steps) == 2 and steps[0].get("type") == "Split" and steps[1].get("type") == "ByteLevel":
        try:  # transformers' table of the regexes llama.cpp names (it rebuilds the split from the name)
            from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS
        except ImportError:
            return None
        regex = steps[0].get("pattern", {}).get("Regex")
        return next((name for name, split in GGUF_PRE_TOKENIZER_SPLITS.items() if split == regex), None)
    return None


def _adds(tokenizer: Any, token_id: int | None, first: bool) -> bool:
    if token_id is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0 if first else -1] == token_id


def tokenizer_fields(tokenizer: Any) -> list[Field]:
    """llama.cpp "gpt2" tokenizer metadata for a byte-level BPE tokenizer; ExportError for any other kind."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = json.loads(backend.to_str()) if backend is not None else {}
    model = spec.get("model") or {}
    pre = _pre_tokenizer_name(spec.get("pre_tokenizer"))
    normalizer = (spec.get("normalizer") or {}).get("type")
    if model.get("type") != "BPE" or pre is None or normalizer not in (None, "NFC"):
        raise ExportError("GGUF export needs a byte-level BPE tokenizer (GPT-2, Llama 3 or Qwen style) or the "
                          "embedded Gemma 3; this model's tokenizer is another kind, so download the merged model.")
    vocab = tokenizer.get_vocab()
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    if [vocab[t] for t in tokens] != list(range(len(tokens))):
        raise ExportError("This tokenizer's token ids have gaps, which a GGUF vocabulary cannot hold.")
    special = set(tokenizer.all_special_ids)
    added = {i for i, tok in getattr(tokenizer, "added_tokens_decoder", {}).items() if not tok.special}
    types = [3 if i in special else 4 if i in added else 1 for i in range(len(tokens))]  # control / user / normal
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    fields = [_field("tokenizer.ggml.model", "gpt2"), _field("tokenizer.ggml.pre", pre),
              _field("tokenizer.ggml.tokens", tokens), _field("tokenizer.ggml.token_type", types)]
    fields += [_field("tokenizer.ggml.merges", merges)] if merges else []
    for key, token_id in (("bos", tokenizer.bos_token_id), ("eos", tokenizer.eos_token_id),
                          ("unknown", tokenizer.unk_token_id), ("padding", tokenizer.pad_token_id)):
        if token_id is not None:
            fields.append(_field(f"tokenizer.ggml.{key}_token_id", int(token_id)))
    fields += [_field("tokenizer.ggml.add_bos_token", _adds(tokenizer, tokenizer.bos_token_id, first=True)),
               _field("tokenizer.ggml.add_eos_token", _adds(tokenizer, tokenizer.eos_token_id, first=False))]
    if isinstance(getattr(tokenizer, "chat_template", None), str):
        fields.append(_field("tokenizer.chat_template", tokenizer.chat_template))
    return fields


# ---- tensors --------------------------------------------------------------------------------------------------

def _permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute`: rows of each head regrouped from (2, d/2) to (d/2, 2)."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def gguf_tensors(model: Any) -> Iterator[tuple[str, Callable[[], np.ndarray], tuple[int, ...]]]:
    """(GGUF name, a function giving the float32 array in llama.cpp's layout, its shape) for every weight."""
    import gguf

    config = model.config
    arch = architecture_of(config)
    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch.gguf_arch)
    names = gguf.get_tensor_name_map(arch_id, config.num_hidden_layers)
    tied = getattr(config, "tie_word_embeddings", False)
    for hf_name, tensor in model.state_dict().items():
        stem, _, suffix = hf_name.rpartition(".")
        name = names.get_name(stem)
        if name is None:
            raise ExportError(f"The weight {hf_name} has no GGUF name for {arch.title}, so this model cannot be "
                              "written as GGUF; download the merged model instead.")
        if name == "output" and tied:
            continue  # the tied head is the embedding matrix; readers tie it again

        def array(tensor: Any = tensor, name: str = name, suffix: str = suffix) -> np.ndarray:
            data = tensor.detach().float().cpu().numpy()
            if arch.norm_offset and name.endswith("norm") and suffix == "weight":
                data = data + arch.norm_offset
            if arch.rotary_permute and name.endswith(("attn_q", "attn_k")):
                heads = config.num_attention_heads if name.endswith("attn_q") else config.num_key_value_heads
                data = _permute(data, heads)
            return np.ascontiguousarray(data)

        yield f"{name}.{suffix}", array, tuple(tensor.shape)


def _encoding(shape: tuple[int, ...], quant: str) -> Any:
    """The ggml type a tensor is stored in: F32 for 1-D, Q8_0 where rows split into blocks of 32, else F16."""
    import gguf

    q = gguf.GGMLQuantizationType
    if len(shape) < 2:
        return q.F32
    return q.Q8_0 if quant == "q8_0" and shape[-1] % gguf.GGML_QUANT_SIZES[q.Q8_0][0] == 0 else q.F16


def _encoded(data: np.ndarray, kind: Any) -> np.ndarray:
    import gguf

    q = gguf.GGMLQuantizationType
    if kind == q.F32:
        return data.astype(np.float32)
    if kind == q.F16:
        return data.astype(np.float16)
    return gguf.quants.quantize(data, kind)


def encoded_nbytes(shape: tuple[int, ...], quant: str) -> int:
    """Bytes one tensor takes in the file."""
    import gguf

    kind = _encoding(shape, quant)
    block, size = gguf.GGML_QUANT_SIZES[kind]
    return int(np.prod(shape)) // block * size


def write_gguf(model: Any, metadata: list[Field], path: Path, quant: str, name: str,
               progress: Progress | None = None) -> Path:
    """Write the model's weights (in llama.cpp's layout) and the given metadata fields as one GGUF file."""
    import gguf

    check_quant(quant)
    arch = architecture_of(model.config)
    tensors = list(gguf_tensors(model))  # names checked before any byte is written
    writer = gguf.GGUFWriter(str(path), arch.gguf_arch)
    writer.add_type("model")
    writer.add_name(name)
    file_type = gguf.LlamaFileType.MOSTLY_Q8_0 if quant == "q8_0" else gguf.LlamaFileType.MOSTLY_F16
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for key, value, vtype, sub_type in metadata:
        writer.add_key_value(key, value, vtype, sub_type)
    q = gguf.GGMLQuantizationType
    for tensor_name, _, shape in tensors:
        kind = _encoding(shape, quant)
        dtype = {q.F32: np.float32, q.F16: np.float16}.get(kind, np.uint8)
        byte_shape = gguf.quant_shape_to_byte_shape(shape, kind) if dtype is np.uint8 else shape
        writer.add_tensor_info(tensor_name, byte_shape, np.dtype(dtype), encoded_nbytes(shape, quant), raw_dtype=kind)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        # One tensor at a time: the file never needs a second copy of the model in memory.
        for i, (tensor_name, array, shape) in enumerate(tensors):
            writer.write_tensor_data(_encoded(array(), _encoding(shape, quant)))
            if progress is not None:
                progress((i + 1) / len(tensors), f"writing {tensor_name}")
    finally:
        writer.close()
    return path
