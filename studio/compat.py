"""Every touch of another library's private API, each behind one small function that fails loudly.

A private name can change in any release without notice. Each function here checks the internal it relies on
before using it and, when it is gone, raises `InternalsChanged` naming the library and its installed version, so an
upgrade fails at the first use (and in `tests/test_compat.py`, which runs every check against the installed
versions) instead of quietly doing something else. Gradio's one touch lives in `ui/compat.py`: the library never
imports gradio. Third-party modules are imported inside the functions, so importing this module costs nothing.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any


class InternalsChanged(RuntimeError):
    """An installed library no longer has an internal the studio relies on (seen after an upgrade)."""


def library_version(distribution: str) -> str:
    """The installed version of a distribution, or "(not installed)"."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def changed(library: str, what: str, purpose: str) -> InternalsChanged:
    """The error for a missing internal: the library and its version, what is gone, what the studio used it for."""
    return InternalsChanged(
        f"{library} {library_version(library)} no longer has {what}, which the studio uses to {purpose}; install "
        f"the version requirements.txt names, or adapt studio/compat.py to this one.")


def require(owner: Any, name: str, library: str, purpose: str) -> Any:
    """`owner.name`, or InternalsChanged when the library no longer has it."""
    if not hasattr(owner, name):
        label = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", None) or type(owner).__qualname__
        raise changed(library, f"{label}.{name}", purpose)
    return getattr(owner, name)


def require_parameters(function: Callable[..., Any], names: Sequence[str], library: str, purpose: str) -> None:
    """InternalsChanged unless `function` still takes every parameter in `names`."""
    missing = [n for n in names if n not in inspect.signature(function).parameters]
    if missing:
        raise changed(library, f"the parameter(s) {', '.join(missing)} of {function.__qualname__}", purpose)


def _source(function: Callable[..., Any]) -> str | None:
    """A function's source, or None where the library ships without it (the source checks are then skipped)."""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return None


# --- transformers / TRL: the trainer -----------------------------------------------------------------------------

_SAVE_PURPOSE = "write checkpoints without the tokenizer (FastSFTTrainer._save)"


@functools.cache
def check_trainer_save_hook() -> None:
    """InternalsChanged unless transformers' Trainer still saves through `self._save(output_dir, state_dict)`,
    the hook FastSFTTrainer overrides."""
    from transformers import Trainer

    save = require(Trainer, "_save", "transformers", _SAVE_PURPOSE)
    require_parameters(save, ("output_dir", "state_dict"), "transformers", _SAVE_PURPOSE)
    source = _source(Trainer.save_model)
    if source is not None and "self._save(" not in source:
        raise changed("transformers", "a Trainer.save_model that calls self._save", _SAVE_PURPOSE)


def log_metric(trainer: Any, mode: str, name: str, value: float) -> None:
    """Make TRL's next log line report `name` = `value` (SFTTrainer's private `_metrics`: mode -> name -> values)."""
    metrics = require(trainer, "_metrics", "trl", "log the real token count with each step")
    if mode not in metrics:
        raise changed("trl", f"a {mode!r} entry in SFTTrainer._metrics", "log the real token count with each step")
    metrics[mode][name] = [value]


# --- transformers + gguf: one parse of a GGUF file -----------------------------------------------------------------

_GGUF_PURPOSE = "let one load share one parse of a GGUF file (studio.model.embedded.gguf_parsed_once)"
_GGUF_SWAP = threading.Lock()  # one swapped block at a time, so a block never restores another's reader


@functools.cache
def check_gguf_reader_lookup() -> None:
    """InternalsChanged unless transformers' GGUF loader looks `gguf.GGUFReader` up at each call (a function-level
    import), the only way a replaced reader reaches it."""
    import gguf
    from transformers import modeling_gguf_pytorch_utils as utils

    require(gguf, "GGUFReader", "gguf", _GGUF_PURPOSE)
    load = require(utils, "load_gguf_checkpoint", "transformers", _GGUF_PURPOSE)
    source = _source(load)
    if "GGUFReader" in vars(utils) or (source is not None and "from gguf import GGUFReader" not in source):
        raise changed("transformers", "a load_gguf_checkpoint that imports gguf.GGUFReader at each call",
                      _GGUF_PURPOSE)


@contextlib.contextmanager
def gguf_reader_replaced(make: Callable[[Any], Any]) -> Iterator[None]:
    """Inside the block `gguf.GGUFReader` is `make(original_reader)`; the original is restored after."""
    import gguf

    check_gguf_reader_lookup()
    with _GGUF_SWAP:
        original = gguf.GGUFReader
        gguf.GGUFReader = make(original)
        try:
            yield
        finally:
            gguf.GGUFReader = original


# --- sacrebleu: per-sentence sufficient statistics -------------------------------------------------------------------

_STATS_PURPOSE = "resample corpus BLEU and chrF from per-sentence statistics (studio.evaluate.significance)"


def corpus_statistics(metric: Any, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> list:
    """The per-sentence sufficient statistics of a sacrebleu metric (one row per hypothesis)."""
    extract = require(metric, "_extract_corpus_statistics", "sacrebleu", _STATS_PURPOSE)
    return extract(hypotheses, references)


def score_from_statistics(metric: Any, statistics: Any) -> Any:
    """The sacrebleu score object of summed sufficient statistics (what corpus_bleu / corpus_chrf return)."""
    return require(metric, "_compute_score_from_stats", "sacrebleu", _STATS_PURPOSE)(statistics)


# --- plotly: a figure without per-property validation -------------------------------------------------------------

def unvalidated_figure(spec: dict[str, Any]) -> Any:
    """`go.Figure(spec)` without plotly's per-property validation (its private `_validate=False`)."""
    import plotly.graph_objects as go

    try:
        return go.Figure(spec, _validate=False)
    except TypeError as exc:  # plotly turns an unknown keyword into "invalid Figure property: _validate"
        if "_validate" not in str(exc):
            raise
        raise changed("plotly", "Figure's _validate keyword", "redraw the live loss chart cheaply") from exc


# --- lm-evaluation-harness: the HF model wrapper the forgetting probe subclasses ------------------------------------

_LM_EVAL_PURPOSE = "run the forgetting probe over the model in memory (studio.evaluate.probe_lm)"


@functools.cache
def check_hflm_hooks() -> None:
    """InternalsChanged unless lm-eval's HFLM still has the private hooks StudioLM overrides, with their parameters."""
    from lm_eval.models.huggingface import HFLM

    hooks = {"_loglikelihood_tokens": ("requests", "disable_tqdm", "override_bs"),
             "_model_call": ("inps", "attn_mask", "labels")}
    for name, parameters in hooks.items():
        require_parameters(require(HFLM, name, "lm_eval", _LM_EVAL_PURPOSE), parameters, "lm_eval", _LM_EVAL_PURPOSE)


def silence_lm_eval_task_bars() -> None:
    """Turn off the progress bar lm-eval draws per task while it builds requests (its module-level `tqdm` name)."""
    import lm_eval.api.task as task
    from tqdm import tqdm

    require(task, "tqdm", "lm_eval", "keep lm-eval's per-task progress bars out of the studio's output")
    task.tqdm = functools.partial(tqdm, disable=True)
