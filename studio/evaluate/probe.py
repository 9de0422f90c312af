"""The forgetting probe: base (adapter disabled) vs tuned model on multiple-choice tasks, through lm-evaluation-harness.

`lm-eval` is an optional extra (`pip install -e '.[probe]'`); without it `require_lm_eval` says how to install it.
The built-in probe is the lm-eval group `studio_probe` in `studio/evaluate/probe_tasks/` (one task per category, local
JSONL files, so it runs offline). Any other lm-eval task name (`arc_easy`, `hellaswag`) needs the Hub for its data.
Both models are scored through lm-eval's HF wrapper around the model already in memory: the same PeftModel with
`disable_adapter()` for the base and with the adapter on for the tuned model, so nothing is loaded twice.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import time
from collections.abc import Callable
from typing import Any

import yaml

from studio.errors import HubUnavailableError, StudioError
from studio.evaluate.before_after import _adapter_off
from studio.evaluate.generation import _cpu_threads, _eval_mode
from studio.evaluate.probe_items import PROBE_DIR
from studio.evaluate.probe_record import ItemScores, ProbeResult, summarize

PROBE_GROUP = "studio_probe"
# Rows of the built-in probe are 2-17 tokens. lm-eval sorts them by length; smaller batches pad less and keep fewer
# head positions, larger ones make fewer, bigger matrix products. `python -m bench probe --batch-sizes 8,16,32`
# times the choice.
DEFAULT_BATCH_SIZE = 16
METRICS = ("acc", "acc_norm")
INSTALL_HINT = "The forgetting probe needs lm-evaluation-harness: install it with pip install 'lm-eval>=0.4.13,<0.5'."

Progress = Callable[[str, int, int], None]


class ProbeError(StudioError):
    """The probe cannot run: lm-eval missing, an unknown task name, or a task whose data cannot be read."""


def lm_eval_installed() -> bool:
    """True when lm-evaluation-harness can be imported."""
    return importlib.util.find_spec("lm_eval") is not None


def require_lm_eval() -> None:
    """Raise ProbeError with the install command when lm-eval is missing."""
    if not lm_eval_installed():
        raise ProbeError(INSTALL_HINT)


def builtin_tasks() -> list[str]:
    """The task names (one per category) of the built-in probe group, in the group's order."""
    group = yaml.safe_load((PROBE_DIR / f"{PROBE_GROUP}.yaml").read_text(encoding="utf-8"))
    return list(group["task"])


def parse_tasks(text: str | list[str] | None) -> list[str]:
    """Task names from a comma/space separated string or a list; empty means the built-in probe."""
    names = text.replace(",", " ").split() if isinstance(text, str) else list(text or [])
    names = [n.strip() for n in names if n.strip()]
    return builtin_tasks() if not names or names == [PROBE_GROUP] else list(dict.fromkeys(names))


def _builtin_spec(name: str) -> dict[str, Any]:
    """A built-in task's YAML as an lm-eval config, its data file resolved next to the YAML."""
    config = yaml.safe_load((PROBE_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    files = config["dataset_kwargs"]["data_files"]
    config["dataset_kwargs"] = {"data_files": {split: str(PROBE_DIR / f) for split, f in files.items()}}
    return config


def check_tasks(names: list[str]) -> list[str]:
    """Fail fast, before any model loads: lm-eval missing, or tasks that need a Hub this machine cannot reach."""
    require_lm_eval()
    builtin = set(builtin_tasks())
    external = [n for n in names if n not in builtin]
    if external:
        from studio.data.hub import hub_reachable

        if not hub_reachable():
            raise HubUnavailableError(f"Task {external[0]!r} needs its data from the Hugging Face Hub, which cannot be "
                                      "reached from this machine; run the built-in probe (studio_probe) instead.")
    return external


def load_tasks(names: list[str]) -> dict[str, Any]:
    """lm-eval Task objects by name: built-in ones from their local files, others from lm-eval's registry + Hub."""
    external = check_tasks(names)
    from lm_eval.tasks import TaskManager

    manager = TaskManager(verbosity="ERROR", include_defaults=bool(external))
    unknown = [n for n in external if n not in manager.all_tasks]
    if unknown:
        raise ProbeError(f"lm-evaluation-harness has no task named {unknown[0]!r}; see `lm-eval ls tasks`.")
    specs = [n if n in external else _builtin_spec(n) for n in names]
    try:
        loaded = manager.load(specs)
    except Exception as exc:  # noqa: BLE001 - a task whose data cannot be read becomes one sentence
        raise ProbeError(f"The probe tasks could not be loaded ({type(exc).__name__}: {str(exc)[:160]}).") from None
    tasks = dict(loaded["tasks"])  # a group such as mmlu comes back as its member tasks
    other = [name for name, task in tasks.items() if getattr(task, "OUTPUT_TYPE", "") != "multiple_choice"]
    if other:
        raise ProbeError(f"Task {other[0]!r} is not multiple choice; the probe scores multiple-choice tasks only.")
    return tasks


def _item_scores(lm: Any, tasks: dict[str, Any]) -> dict[str, ItemScores]:
    """Run lm-eval on the tasks; each task's per-item correctness (1.0 or 0.0) for acc and acc_norm, in doc order."""
    from lm_eval.evaluator import evaluate

    # bootstrap_iters=0: lm-eval's own standard errors are unpaired; the studio computes a paired interval.
    results = evaluate(lm, {"tasks": tasks, "groups": {}, "group_map": {}}, bootstrap_iters=0, log_samples=True)
    out = {}
    for name in tasks:
        samples = sorted(results["samples"][name], key=lambda s: s["doc_id"])
        out[name] = {m: [float(s[m]) for s in samples] for m in METRICS if samples and m in samples[0]}
    return out


def score_both(lm: Any, model: Any, tasks: dict[str, Any],
               progress: Progress | None = None) -> tuple[dict[str, dict[str, ItemScores]], dict[str, float]]:
    """Item scores and seconds of the base (adapter disabled) and the tuned model, through one lm-eval LM."""
    scores, seconds = {}, {}
    for which in ("base", "tuned"):
        lm.progress = functools.partial(progress, which) if progress else None
        start = time.perf_counter()
        with _adapter_off(model) if which == "base" else contextlib.nullcontext():
            scores[which] = _item_scores(lm, tasks)
        seconds[which] = time.perf_counter() - start
    return scores, seconds


def run_probe(model: Any, tokenizer: Any, tasks: list[str] | str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
              progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> ProbeResult:
    """Score the base (adapter disabled) and the tuned model on the tasks; raises ProbeStopped when stopped.

    `progress(which, done, total)` reports forward-pass rows for "base" then "tuned".
    """
    loaded = load_tasks(parse_tasks(tasks))
    from studio.evaluate.probe_lm import StudioLM

    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # lm-eval logs every step of a run at INFO
    with _eval_mode(model), _cpu_threads(model) as threads:
        lm = StudioLM(model, tokenizer, batch_size, should_stop=should_stop, threads=threads)
        scores, seconds = score_both(lm, model, loaded, progress)
    return summarize(list(loaded), scores["base"], scores["tuned"], seconds["base"], seconds["tuned"])
