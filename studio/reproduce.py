"""The reproducibility bundle in every run folder: what to install, what data, and a TRL config that re-runs it.

`run_dir/reproduce/` holds a copy of the settings, the data fingerprint, the library versions, the training split
rendered as prompt/completion JSON lines, a `trl sft` config and a launch script. TRL's own SFT script
(`trl/scripts/sft.py`) then trains on exactly the same text: TRL appends EOS to each completion and masks the
prompt, as the studio does. Two differences remain, both noted in the config: TRL tokenizes prompt + completion
together (the studio tokenizes them apart, which can differ by a token at the seam for some tokenizers) and cuts
over-long rows at the end (the studio keeps the end and drops the start of the prompt).
"""
from __future__ import annotations

import hashlib
import json
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from studio.errors import RunError
from studio.examples import Example
from studio.settings import EMBEDDED_MODEL, StudioSettings

EMBEDDED_HUB_ID = "google/gemma-3-270m"
LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "huggingface_hub")
DATA_FILE = "train_prompt_completion.jsonl"
CONFIG_FILE = "sft_config.yaml"


def hub_model_id(settings: StudioSettings) -> str:
    """The model id a Hub user loads: Gemma 3 270M for the embedded model, else the run's own model name."""
    name = settings.model.model.strip()
    return EMBEDDED_HUB_ID if name == EMBEDDED_MODEL else name


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a run depends on, plus the studio's own."""
    from studio import __version__

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {**versions, "studio": __version__}


def versions_record(settings: StudioSettings) -> dict[str, Any]:
    """Library versions, Python, platform and every seed of the run (the content of versions.json)."""
    import torch

    return {
        "libraries": library_versions(), "python": platform.python_version(), "platform": platform.platform(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "seeds": {"train": settings.train.seed, "data": settings.data.seed, "generation": settings.generation.seed},
    }


def fingerprint_parts(settings: StudioSettings) -> dict[str, str]:
    """The formatting inputs the fingerprint covers besides the rows (the custom format only when it is used)."""
    d = settings.data
    return {"template": d.template, "custom_template": d.custom_template if d.template == "custom" else "",
            "system_prompt": d.system_prompt}


def data_fingerprint(run_dir: Path, settings: StudioSettings | None = None) -> str:
    """sha256 of the formatted training data: the formatting inputs as sorted JSON, a newline, data/train.jsonl."""
    if settings is None:
        from studio.runs import read_settings

        settings = read_settings(run_dir)
    path = run_dir / "data" / "train.jsonl"
    if not path.is_file():
        raise RunError(f"Run {run_dir.name} has no saved training data yet.")
    digest = hashlib.sha256(json.dumps(fingerprint_parts(settings), sort_keys=True).encode("utf-8") + b"\n")
    digest.update(path.read_bytes())
    return digest.hexdigest()


def read_examples(path: Path) -> list[Example]:
    """The examples of a saved split (data/<split>.jsonl), empty when it does not exist."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Example.from_row(json.loads(line)) for line in lines if line.strip()]


def _template(run_dir: Path, settings: StudioSettings, tokenizer: Any) -> Any:
    from studio.templates import get_template

    d = settings.data
    if d.template == "tokenizer" and tokenizer is None and (run_dir / "adapter" / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(run_dir / "adapter"))  # the tokenizer the run saved
    return get_template(d.template, custom=d.custom_template, tokenizer=tokenizer, system=d.system_prompt)


def prompt_completion_rows(run_dir: Path, settings: StudioSettings, tokenizer: Any = None) -> list[dict[str, str]]:
    """The training split rendered by the run's template: one {"prompt", "completion"} per row, EOS not included."""
    template = _template(run_dir, settings, tokenizer)
    rendered = [template.render(e) for e in read_examples(run_dir / "data" / "train.jsonl")]
    return [{"prompt": r.prompt, "completion": r.completion} for r in rendered]


def _target_modules(targets: list[str]) -> str | list[str]:
    # TRL's ModelConfig turns a one-item list into a plain string, which peft reads as a regular expression over
    # full module names; so one module becomes a pattern for it, and none means every linear layer but the head.
    if not targets:
        return "all-linear"
    return rf".*\.{targets[0]}$" if len(targets) == 1 else list(targets)


def _precision_fields(precision: str) -> dict[str, bool]:
    # "auto" is left to the machine: TRL defaults to bf16 and launch.sh switches it off where it cannot run.
    return {"fp32": {"bf16": False}, "bf16": {"bf16": True}, "fp16": {"bf16": False, "fp16": True}}.get(precision, {})


def sft_config_dict(settings: StudioSettings) -> dict[str, Any]:
    """The `trl sft` YAML mapping (ScriptArguments, SFTConfig, ModelConfig, DatasetMixtureConfig fields)."""
    t, lora, m = settings.train, settings.lora, settings.model
    config: dict[str, Any] = {
        "model_name_or_path": hub_model_id(settings), "dtype": "float32",  # the studio trains on fp32 weights
        "trust_remote_code": m.trust_remote_code,
        "datasets": [{"path": "json", "data_files": DATA_FILE, "split": "train"}],
        "use_peft": True, "lora_r": lora.r, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout,
        "lora_target_modules": _target_modules(lora.target_modules),
        "learning_rate": t.learning_rate, "num_train_epochs": t.epochs, "max_steps": t.max_steps or -1,
        "per_device_train_batch_size": t.batch_size, "gradient_accumulation_steps": t.grad_accum,
        "warmup_steps": t.warmup_steps, "lr_scheduler_type": t.lr_scheduler, "weight_decay": t.weight_decay,
        "optim": t.optimizer, "max_grad_norm": t.max_grad_norm, "seed": t.seed,
        "max_length": settings.data.max_length, "completion_only_loss": t.completion_only_loss, "packing": False,
        "activation_checkpointing": t.gradient_checkpointing,  # transformers 5's name for gradient_checkpointing
        "train_sampling_strategy": "group_by_length" if t.group_by_length else "random",
        "logging_steps": t.logging_steps, "save_strategy": "steps" if t.save_steps else "no",
        "report_to": "none", "output_dir": "output", **_precision_fields(t.precision),
    }
    if t.save_steps:
        config["save_steps"] = t.save_steps
    if m.revision.strip():
        config["model_revision"] = m.revision.strip()
    if t.load_in_4bit:
        config.update(load_in_4bit=True, bnb_4bit_quant_type="nf4")
    return config


def _config_notes(settings: StudioSettings, run_id: str) -> list[str]:
    notes = [f"Reproduces studio run {run_id} with TRL's SFT script; run it from this folder:",
             f"  bash launch.sh     or     trl sft --config {CONFIG_FILE}",
             f"{DATA_FILE} holds the training split as the run's template rendered it (TRL appends EOS).",
             "TRL tokenizes prompt + completion together and truncates the end of over-long rows."]
    if settings.model.model.strip() == EMBEDDED_MODEL:
        notes.append("The studio tuned a Q4_K_M GGUF copy of this model dequantised to fp32; weights differ slightly.")
    if settings.lora.bias != "none":
        notes.append(f"TRL's command line always trains bias=none; the run used lora.bias={settings.lora.bias}.")
    if settings.data.validation_fraction:
        notes.append("The run's validation split is not part of this config, so no eval loss is computed.")
    return notes


def sft_config_yaml(settings: StudioSettings, run_id: str) -> str:
    """The sft_config.yaml text: explanatory comments, then the mapping in a stable order."""
    header = "".join(f"# {line}\n" for line in _config_notes(settings, run_id))
    return header + yaml.safe_dump(sft_config_dict(settings), sort_keys=False, allow_unicode=True)


LAUNCH_SH = """#!/usr/bin/env bash
# Re-run this training with TRL's own SFT script. Install the versions in requirements.txt first.
# NUM_PROCESSES defaults to every visible GPU; each process takes a batch of per_device_train_batch_size, so the
# effective batch grows with it: NUM_PROCESSES=1 reproduces the run's batch exactly.
set -euo pipefail
cd "$(dirname "$0")"
NUM_PROCESSES="${NUM_PROCESSES:-$(python -c 'import torch; print(max(torch.cuda.device_count(), 1))')}"
PRECISION="$(python -c '%s')"
accelerate launch --num_processes "$NUM_PROCESSES" -m trl.scripts.sft --config %s $PRECISION "$@"
# The same through TRL's command line, which calls accelerate launch itself:
#   trl sft --config %s --num_processes "$NUM_PROCESSES" $PRECISION
"""
# Only for precision "auto": TRL defaults to bf16, which a CPU or a pre-Ampere GPU rejects.
AUTO_PRECISION = ('import torch; print("" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else '
                  '"--bf16 false --fp16 true" if torch.cuda.is_available() else "--bf16 false --use_cpu true")')


def launch_script(settings: StudioSettings) -> str:
    """launch.sh: `accelerate launch ... -m trl.scripts.sft --config sft_config.yaml` and the `trl sft` form."""
    precision = AUTO_PRECISION if settings.train.precision == "auto" else "print()"
    return LAUNCH_SH % (precision, CONFIG_FILE, CONFIG_FILE)


def requirements_text() -> str:
    """requirements.txt pinning the libraries this run used."""
    pins = {k: v for k, v in library_versions().items() if k != "studio" and v != "not installed"}
    return "".join(f"{name}=={version.split('+')[0]}\n" for name, version in pins.items())


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_repro_bundle(run_dir: Path, tokenizer: Any = None) -> Path:
    """Write run_dir/reproduce/ from the run's settings and saved training split; returns the folder."""
    from studio.runs import read_settings

    settings = read_settings(run_dir)
    files = {
        "settings.json": json.dumps(settings.to_dict(), indent=2),
        "fingerprint.txt": f"sha256:{data_fingerprint(run_dir, settings)}\n",
        "versions.json": json.dumps(versions_record(settings), indent=2),
        DATA_FILE: _jsonl(prompt_completion_rows(run_dir, settings, tokenizer)),
        CONFIG_FILE: sft_config_yaml(settings, run_dir.name),
        "launch.sh": launch_script(settings),
        "requirements.txt": requirements_text(),
    }
    target, tmp = run_dir / "reproduce", run_dir / ".reproduce.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    (tmp / "launch.sh").chmod(0o755)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # written whole in a temp folder first, so a reader never sees half a bundle
    return target
