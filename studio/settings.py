"""Typed settings, one dataclass per concern; their defaults are the default preset (`cpu-demo`).

Each field carries `metadata` with `help` (shown as the widget's info text) and, where it applies,
`min`/`max` bounds or `choices`. Validation lives in `__post_init__` and raises `SettingsError`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from studio.errors import SettingsError

EMBEDDED_MODEL = "embedded:gemma-3-270m"


def _f(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with a help text and optional bounds/choices in its metadata."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


def _check_bounds(obj: Any) -> None:
    """Raise SettingsError for any field outside its declared min/max/choices."""
    for f in dataclasses.fields(obj):
        value, meta = getattr(obj, f.name), f.metadata
        label = f"{type(obj).__name__.removesuffix('Settings').lower()}.{f.name}"
        if "choices" in meta and value not in meta["choices"]:
            raise SettingsError(f"{label} must be one of {', '.join(map(str, meta['choices']))}, not {value!r}.")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):  # NaN passes every < and > comparison below
            raise SettingsError(f"{label} must be a finite number, not {value}.")
        if "min" in meta and value < meta["min"]:
            raise SettingsError(f"{label} must be at least {meta['min']}, not {value}.")
        if "max" in meta and value > meta["max"]:
            raise SettingsError(f"{label} must be at most {meta['max']}, not {value}.")
        if meta.get("exclusive_max") is not None and value >= meta["exclusive_max"]:
            raise SettingsError(f"{label} must be below {meta['exclusive_max']}, not {value}.")


@dataclass
class DataSettings:
    """Where the examples come from, how they are filtered, split and formatted."""

    dataset: str = _f("sample:word_tasks", "A built-in sample (sample:NAME), a file path, or a Hub dataset id.")
    hub_split: str = _f("train", "Split to read when the dataset is a Hub id.")
    column_map: dict = _f({}, "Explicit mapping of roles (instruction/input/output) to column names.")
    template: str = _f("instruction_output", "How each example is laid out as text; the preview shows exactly what the model sees.")
    custom_template: str = _f(
        "### Instruction:\n{instruction}\n\n### Output:\n{output}",
        "Format string for the custom template; fields: {instruction} {input} {output} {system}; {output} last.",
    )
    system_prompt: str = _f("", "Optional system message for chat templates.")
    strict: bool = _f(False, "Refuse a file with any irregular row instead of repairing or skipping it (the summary lists them).")
    keep_truncated: bool = _f(False, "Keep the complete records of a JSON file cut off mid-record (a partial download) instead of refusing it.")
    drop_with_input: bool = _f(False, "Keep only rows whose input is empty (as the CodeAlpaca tutorial does).")
    drop_empty: bool = _f(True, "Drop rows whose instruction is empty (rows without an answer are always skipped).")
    dedupe: bool = _f(True, "Drop exact duplicate rows.")
    shuffle: bool = _f(True, "Shuffle before splitting.")
    seed: int = _f(42, "Seed for shuffling and splitting.", min=0)
    max_examples: int = _f(0, "Keep a seeded random subset of N rows (0 keeps all).", min=0)
    test_fraction: float = _f(0.1, "Fraction of rows held out for the before/after comparison.", min=0.0, exclusive_max=1.0)
    validation_fraction: float = _f(0.0, "Fraction held out for eval loss during training.", min=0.0, exclusive_max=1.0)
    max_test_examples: int = _f(48, "Cap on held-out rows used in Compare (0 = all); more rows narrow the confidence "
                                 "interval of the change.", min=0)
    max_length: int = _f(256, "Maximum tokens per example; longer ones are truncated and flagged.", min=16, max=32768)

    def __post_init__(self) -> None:
        _check_bounds(self)
        if self.test_fraction + self.validation_fraction >= 1.0:
            raise SettingsError("data.test_fraction plus data.validation_fraction must leave some rows for training.")


@dataclass
class ModelSettings:
    """Which base model to tune."""

    model: str = _f(EMBEDDED_MODEL, "The embedded Gemma 3 270M, any causal-LM Hub id, or a local folder.")
    trust_remote_code: bool = _f(False, "Run Python code shipped with the model repo (only for repos you trust).")
    revision: str = _f("", "Hub revision (branch, tag or commit); empty for the default.")

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise SettingsError("model.model must name a model.")


@dataclass
class LoraSettings:
    """LoRA adapter shape."""

    r: int = _f(16, "LoRA rank: size of the low-rank update.", min=1, max=512)
    alpha: int = _f(32, "LoRA alpha: the update is scaled by alpha / r.", min=1, max=4096)
    dropout: float = _f(0.0, "Dropout on the LoRA input.", min=0.0, max=0.9)
    target_modules: list = _f([], "Modules to adapt; empty picks all linear layers of the architecture.")
    bias: str = _f("none", "Which biases to train.", choices=["none", "lora_only", "all"])

    def __post_init__(self) -> None:
        _check_bounds(self)


@dataclass
class TrainSettings:
    """Optimiser, schedule and runtime switches.

    The cpu-demo defaults (3/4 of an epoch = 60 steps of 4 examples at 1e-3) were chosen on word_tasks' VALIDATION
    rows (`python -m bench sweep`, which prints each candidate's validation BLEU and interval), never on the test
    rows the demo reports. A full epoch scored a little higher there, but 3/4 of an epoch keeps the gain well above
    the demo's target while fitting the demo's time budget, which a full epoch misses (`python -m bench demo`, the
    README's demo block).
    """

    epochs: float = _f(0.75, "Passes over the training split (ignored when max_steps > 0).", min=0.01, max=100)
    max_steps: int = _f(0, "Stop after this many optimiser steps (0: use epochs).", min=0)
    learning_rate: float = _f(1e-3, "Peak learning rate.", min=1e-8, max=1.0)
    batch_size: int = _f(4, "Examples per device step.", min=1, max=1024)
    grad_accum: int = _f(1, "Steps accumulated per optimiser update.", min=1, max=1024)
    warmup_steps: int = _f(0, "Linear warm-up steps.", min=0)
    lr_scheduler: str = _f("linear", "Learning-rate schedule.", choices=["linear", "cosine", "constant", "constant_with_warmup"])
    weight_decay: float = _f(0.0, "AdamW weight decay.", min=0.0, max=1.0)
    optimizer: str = _f("adamw_torch_fused", "Optimiser: adamw_torch_fused is AdamW in one fused kernel per step "
                        "(the same update as adamw_torch, a fraction of its small operations).",
                        choices=["adamw_torch_fused", "adamw_torch", "adafactor", "sgd"])
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0 disables).", min=0.0)
    logging_steps: int = _f(1, "Log loss every N steps (1 gives a live chart from the first step).", min=1)
    eval_steps: int = _f(0, "Eval loss every N steps on the validation part (0: only at the end).", min=0)
    save_steps: int = _f(20, "Checkpoint every N steps (adapter + optimizer state), so a run killed mid-way can be "
                         "resumed from the page; 0: only at the end.", min=0)
    seed: int = _f(42, "Training seed: set before LoRA wraps the model, so it drives the adapter's initial weights, "
                   "the batch order and dropout.", min=0)
    completion_only_loss: bool = _f(True, "Train only on the answer tokens; the prompt is masked.")
    fast_loss: bool = _f(True, "Compute the vocabulary projection only where the loss is taken.")
    fused_head: bool = _f(True, "On a CPU, take the output head's cross-entropy and its gradient in one pass over the "
                          "head's weights instead of two (the same loss up to float rounding; fast loss only).")
    group_by_length: bool = _f(True, "Batch examples of similar length to cut padding.")
    gradient_checkpointing: bool = _f(False, "Recompute activations to save memory (slower).")
    precision: str = _f("auto", "Numeric precision: auto is fp32 on CPU, bf16/fp16 on a capable GPU.", choices=["auto", "fp32", "bf16", "fp16"])
    load_in_4bit: bool = _f(False, "QLoRA: load the base in 4-bit (CUDA + bitsandbytes only).")
    threads: int = _f(
        0, "CPU threads for torch, pinned for the whole run (training and its Compare) so the same settings give the "
        "same weights; 0 uses every core this process may run on. The number used is recorded in run.json, the "
        "report and the bundle.", min=0, max=256)
    balance_threads: bool = _f(
        False, "Adaptive thread count: follow the cores other processes leave idle, re-checked while training and "
        "generating. Faster on a busy shared machine, but NOT bit-reproducible (a thread change alters the order of "
        "float sums).")
    report_to: str = _f("none", "Also log training metrics to an experiment tracker: TensorBoard event files in the run "
                        "folder (checkpoints/runs/), or trackio's local dashboard (`trackio show`).",
                        choices=["none", "trackio", "tensorboard"])
    snapshots: int = _f(4, "Adapter-only snapshots spread evenly across the run (megabytes each), so Compare can show "
                        "how the answers changed step by step and the best one can become the run's adapter; 0: none.",
                        min=0, max=50)
    early_stopping_patience: int = _f(0, "Stop when the eval loss has not improved for this many evaluations in a row "
                                      "(needs a validation split and eval_steps > 0); 0: never stop early.", min=0, max=1000)
    early_stopping_min_delta: float = _f(0.0, "How much lower the eval loss must get to count as an improvement.",
                                         min=0.0, max=10.0)
    num_processes: int = _f(1, "Training processes under accelerate launch (data parallel: each takes batch_size "
                            "examples a step, so the batch per optimiser step is batch_size x processes); 1 trains "
                            "inside the app. On a CPU each process gets its share of the cores, on GPUs one GPU each.",
                            min=1)
    accelerate_config: str = _f("", "An accelerate config file (from `accelerate config`) for FSDP, DeepSpeed ZeRO or "
                                "several machines; empty: DDP on this machine.")

    def __post_init__(self) -> None:
        _check_bounds(self)
        # Only what holds on every machine: a run folder copied from a bigger one must still open here. Whether
        # this machine has the processes and the config file is checked when a run starts (`train.launch`).
        if not isinstance(self.accelerate_config, str):
            raise SettingsError("train.accelerate_config must be a file path, or empty.")


@dataclass
class GenerationSettings:
    """How the base and tuned models answer in Compare.

    cpu-demo: 12 new tokens cover the longest word_tasks answer (its tokens + EOS); the base model never stops, so
    it always pays all of them. The 48 held-out prompts go in one batch: a greedy step on a CPU is bound by reading
    the weights (the 262,144-row output head included) more than by arithmetic, so a step costs nearly the same at a
    smaller batch and one batch beats several (`python -m bench levers` times smaller batches against the default:
    the README's levers table). Stop lands between batches, so a smaller batch stops sooner.

    Answers sized to the data (`max_new_tokens_auto`): Compare, the Chat and the demo raise the limit to fit the
    held-out references (`studio.evaluate.lengths.fit_answer_length`), so long free-form answers are not all cut
    mid-sentence; references that fit max_new_tokens (the word tasks) keep it, so their answers do not change.
    Answers allowed more than 64 tokens also get the loop guard (`repetition_penalty_auto`,
    `studio.evaluate.lengths.loop_penalty`): greedy decoding of a 270M model otherwise writes one sentence again and
    again until the limit.
    """

    max_new_tokens: int = _f(12, "Most tokens generated per answer (the least, when fitted to the data).", min=1,
                             max=4096)
    max_new_tokens_auto: bool = _f(True, "Fit the answer length to the held-out references (their 95th-percentile "
                                         "length + 20%, never below max_new_tokens, within the time budget); off: "
                                         "exactly max_new_tokens.")
    answer_budget_seconds: float = _f(180.0, "Time budget for Compare's base + tuned answers when the answer length "
                                             "is fitted (at the decoding speed measured on this machine).", min=1.0,
                                      max=86400.0)
    baseline_shots: int = _f(3, "Prompt-only baseline: the base model answers with this many training examples "
                                "before each prompt (fewer when the context or the time budget is short); 0: off.",
                             min=0, max=32)
    baseline_budget_seconds: float = _f(90.0, "Time budget for the prompt-only baseline's answers (at the speed "
                                              "measured on this machine); it is skipped, with why, when even one "
                                              "example does not fit.", min=1.0, max=86400.0)
    num_beams: int = _f(1, "Beam search width (1 is greedy or sampling).", min=1, max=16)
    do_sample: bool = _f(False, "Sample instead of greedy decoding.")
    temperature: float = _f(0.7, "Sampling temperature (only when sampling).", min=0.01, max=5.0)
    top_p: float = _f(0.9, "Nucleus sampling mass (only when sampling).", min=0.01, max=1.0)
    repetition_penalty: float = _f(1.0, "Penalty above 1 discourages repeats (the least, when answers run long and "
                                        "the loop guard is on).", min=0.5, max=3.0)
    repetition_penalty_auto: bool = _f(True, "Answers allowed more than 64 tokens get a repetition penalty of at "
                                             "least 1.15 (a small model decoding greedily loops on long answers); "
                                             "off: exactly repetition_penalty.")
    batch_size: int = _f(48, "Prompts generated together (Stop lands between batches).", min=1, max=256)
    seed: int = _f(0, "Seed for sampling.", min=0)
    answer_loss_precision: str = _f("auto", "Arithmetic of the answer loss: auto reads it with a bf16 copy of the "
                                            "weights on a CPU with native bf16 (about twice as fast, each example "
                                            "within about 0.02 nats of fp32), else with the model's own; fp32: "
                                            "always the model's own. Answers never change.",
                                    choices=["auto", "fp32", "bf16"])
    include_overlap: bool = _f(False, "Count held-out prompts that repeat or nearly repeat a training prompt (the "
                                      "same words, or word 3-gram Jaccard similarity 0.8 or more) in the headline; "
                                      "off: the headline scores only the other rows and says how many it left out.")

    def __post_init__(self) -> None:
        _check_bounds(self)


# Settings earlier versions had, and why each went. A saved run's settings.json may still hold one: `from_dict`
# (how a run folder's settings are read) drops it, so old runs keep opening; a preset, the command line or the UI
# that sets one is told it is gone (`apply_overrides`), as for any unknown key.
RETIRED: dict[str, str] = {
    "train.fused_lora": "LoRA's fused forward was removed: it patched peft's internals for no measurable gain",
}

SECTIONS: dict[str, type] = {
    "data": DataSettings,
    "model": ModelSettings,
    "lora": LoraSettings,
    "train": TrainSettings,
    "generation": GenerationSettings,
}


@dataclass
class StudioSettings:
    """Every setting of a run, grouped by concern."""

    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (JSON/YAML friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StudioSettings":
        """Build from a saved nested dict: retired settings (`RETIRED`) are dropped, other unknown sections or keys
        raise SettingsError."""
        return apply_overrides(cls(), _without_retired(data))


def _without_retired(data: dict[str, Any]) -> dict[str, Any]:
    """`data` less the settings that earlier versions wrote and this one no longer has."""
    return {section: {k: v for k, v in values.items() if f"{section}.{k}" not in RETIRED}
            if isinstance(values, dict) else values for section, values in data.items()}


def _coerce(value: Any, default: Any, label: str) -> Any:
    """Convert a YAML/CLI value to the type of the field's default."""
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in {"true", "1", "yes", "on"}:
                return True
            if value.lower() in {"false", "0", "no", "off"}:
                return False
            raise SettingsError(f"{label} must be true or false, not {value!r}.")
        return bool(value)
    try:
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) else int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{label} must be a number, not {value!r}.") from None
    if isinstance(default, list):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise SettingsError(f"{label} must be a list.")
        return list(value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise SettingsError(f"{label} must be a mapping.")
        return dict(value)
    return "" if value is None else str(value)


def apply_overrides(settings: StudioSettings, overrides: dict[str, Any]) -> StudioSettings:
    """Return new settings with nested overrides applied ({"train": {"learning_rate": 1e-4}})."""
    sections = {name: dataclasses.asdict(getattr(settings, name)) for name in SECTIONS}
    for section, values in overrides.items():
        if section not in SECTIONS:
            raise SettingsError(f"Unknown settings section {section!r}; expected one of {', '.join(SECTIONS)}.")
        if not isinstance(values, dict):
            raise SettingsError(f"Settings section {section!r} must be a mapping of keys to values.")
        for key, value in values.items():
            if key not in sections[section]:
                if f"{section}.{key}" in RETIRED:
                    raise SettingsError(f"Setting {section}.{key} no longer exists ({RETIRED[f'{section}.{key}']}); "
                                        "remove it.")
                raise SettingsError(f"Unknown setting {section}.{key}.")
            sections[section][key] = _coerce(value, sections[section][key], f"{section}.{key}")
    return StudioSettings(**{name: SECTIONS[name](**vals) for name, vals in sections.items()})


def parse_assignments(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """Turn CLI `section.key=value` strings into a nested overrides dict."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise SettingsError(f"Expected section.key=value (e.g. train.learning_rate=1e-4), got {pair!r}.")
        out.setdefault(section, {})[name] = value
    return out


def field_meta(section: str, name: str) -> dict[str, Any]:
    """Help text, bounds and choices of one field, for building widgets."""
    cls = SECTIONS[section]
    for f in dataclasses.fields(cls):
        if f.name == name:
            return dict(f.metadata)
    raise SettingsError(f"Unknown setting {section}.{name}.")
