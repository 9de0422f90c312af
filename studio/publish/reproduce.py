"""The reproducibility bundle in every run folder: what to install, what data, and a TRL config that re-runs it.

`run_dir/reproduce/` holds a copy of the settings, the data fingerprint, the library versions, the training split
rendered as prompt/completion JSON lines, a `trl sft` config and a launch script. TRL's own SFT script
(`trl/scripts/sft.py`) then trains on exactly the same text: TRL appends EOS to each completion and masks the
prompt, as the studio does. Two differences remain, both noted in the config: TRL tokenizes prompt + completion
together (the studio tokenizes them apart, which can differ by a token at the seam for some tokenizers) and cuts
over-long rows at the end (the studio keeps the end and drops the start of the prompt).
"""
from __future__ import annotations

import enum
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from studio.errors import RunError
from studio.runs import RunFolder, replace_folder
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


def versions_record(settings: StudioSettings, threads: dict[str, Any] | None = None) -> dict[str, Any]:
    """Library versions, Python, platform, every seed and the CPU thread count of the run (versions.json)."""
    import torch

    return {
        "libraries": library_versions(), "python": platform.python_version(), "platform": platform.platform(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "seeds": {"train": settings.train.seed, "data": settings.data.seed, "generation": settings.generation.seed},
        "threads": threads or {"count": settings.train.threads or None, "policy": None},
    }


def recorded_threads(run_dir: Path) -> dict[str, Any] | None:
    """{"count", "policy"} of the CPU threads the run trained on, from run.json (None before training started)."""
    folder = RunFolder(run_dir)
    run = folder.read_json(folder.run_file)
    return {"count": run["threads"], "policy": run.get("thread_policy")} if run.get("threads") else None


def fingerprint_parts(settings: StudioSettings) -> dict[str, str]:
    """The formatting inputs the fingerprint covers besides the rows (the custom format only when it is used)."""
    d = settings.data
    return {"template": d.template, "custom_template": d.custom_template if d.template == "custom" else "",
            "system_prompt": d.system_prompt}


def data_fingerprint(run_dir: Path, settings: StudioSettings | None = None) -> str:
    """sha256 of the formatted training data: the formatting inputs as sorted JSON, a newline, the train split file."""
    folder = RunFolder(run_dir)
    settings = settings or folder.read_settings()
    path = folder.split_file("train")
    if not path.is_file():
        raise RunError(f"Run {run_dir.name} has no saved training data yet.")
    digest = hashlib.sha256(json.dumps(fingerprint_parts(settings), sort_keys=True).encode("utf-8") + b"\n")
    digest.update(path.read_bytes())
    return digest.hexdigest()


def _template(folder: RunFolder, settings: StudioSettings, tokenizer: Any) -> Any:
    from studio.data.templates import template_for

    if settings.data.template == "tokenizer" and tokenizer is None and folder.has_adapter():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder.adapter_dir))  # the tokenizer the run saved
    return template_for(settings.data, tokenizer)


def prompt_completion_rows(run_dir: Path, settings: StudioSettings, tokenizer: Any = None) -> list[dict[str, str]]:
    """The training split rendered by the run's template as {"prompt", "completion"} rows, EOS not included.

    A multi-turn chat under a chat template trains every assistant turn, which TRL's prompt/completion format cannot
    say in one row (its conversational `assistant_only_loss` needs the model's own template with generation
    markers, not the studio's ChatML): so a chat gives one row per assistant turn, the turn as the completion and
    everything before it as the prompt. Each turn is then trained once, on the same text as in the studio.
    """
    folder = RunFolder(run_dir)
    template = _template(folder, settings, tokenizer)
    rows = []
    for example in folder.read_split("train", required=False):
        before = ""
        for text, trained in template.render(example).segments():
            if trained:
                rows.append({"prompt": before, "completion": text})
            before += text
    return rows


def _target_modules(targets: Any) -> str | list[str]:
    # TRL's ModelConfig turns a one-item list into a plain string, which peft reads as a regular expression over
    # full module names; so one module becomes a pattern for it, and peft's "all-linear" stays as it is.
    if isinstance(targets, str):
        return targets
    targets = sorted(targets)
    return rf".*\.{targets[0]}$" if len(targets) == 1 else targets


def _plain(value: Any) -> Any:
    """A config value as YAML writes it: enums by their value, lists as lists."""
    if isinstance(value, enum.Enum):
        return value.value
    return list(value) if isinstance(value, (list, tuple, set)) else value


SFT_FIELDS = (  # SFTConfig fields the bundle copies from the run's own config object, in the file's order
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "warmup_steps", "lr_scheduler_type", "weight_decay", "optim", "max_grad_norm", "seed", "max_length",
    "completion_only_loss", "packing", "activation_checkpointing", "train_sampling_strategy", "logging_steps",
    "save_strategy",
)


def sft_config_dict(settings: StudioSettings, sft: Any, lora: Any) -> dict[str, Any]:
    """The `trl sft` YAML mapping read off the run's own `SFTConfig` and `LoraConfig` (ModelConfig from settings)."""
    m = settings.model
    config: dict[str, Any] = {
        "model_name_or_path": hub_model_id(settings), "dtype": "float32",  # the studio trains on fp32 weights
        "trust_remote_code": m.trust_remote_code,
        "datasets": [{"path": "json", "data_files": DATA_FILE, "split": "train"}],
        "use_peft": True, "lora_r": lora.r, "lora_alpha": lora.lora_alpha, "lora_dropout": lora.lora_dropout,
        "lora_target_modules": _target_modules(lora.target_modules),
        **{name: _plain(getattr(sft, name)) for name in SFT_FIELDS},
        "report_to": "none", "output_dir": "output",
    }
    if config["save_strategy"] == "steps":
        config["save_steps"] = sft.save_steps
    # "auto" is left to the machine that re-runs it: TRL defaults to bf16 and launch.sh switches it off where it
    # cannot run. A fixed precision is copied as the run used it.
    if settings.train.precision != "auto":
        config.update(bf16=bool(sft.bf16), fp16=bool(sft.fp16))
    if m.revision.strip():
        config["model_revision"] = m.revision.strip()
    if settings.train.load_in_4bit:
        config.update(load_in_4bit=True, bnb_4bit_quant_type="nf4")
    return config


def _config_notes(settings: StudioSettings, run_id: str, turn_rows: int = 0,
                  threads: dict[str, Any] | None = None) -> list[str]:
    notes = [f"Reproduces studio run {run_id} with TRL's SFT script; run it from this folder:",
             f"  bash launch.sh     or     trl sft --config {CONFIG_FILE}",
             f"{DATA_FILE} holds the training split as the run's template rendered it (TRL appends EOS).",
             "TRL tokenizes prompt + completion together and truncates the end of over-long rows."]
    if turn_rows:
        notes += [f"Multi-turn chats are written as one row per assistant turn ({turn_rows} extra rows): each turn is "
                  "trained once, as in the studio,",
                  "but TRL appends EOS after every turn where the studio appends it after a chat's last answer only."]
    if threads:
        notes.append(f"The run trained on {threads['count']} CPU thread(s), {threads['policy']}; on a CPU, "
                     f"OMP_NUM_THREADS={threads['count']} repeats its order of float sums.")
    if settings.model.model.strip() == EMBEDDED_MODEL:
        notes.append("The studio tuned a Q4_K_M GGUF copy of this model dequantised to fp32; weights differ slightly.")
    if settings.lora.bias != "none":
        notes.append(f"TRL's command line always trains bias=none; the run used lora.bias={settings.lora.bias}.")
    if settings.data.validation_fraction:
        notes.append("The run's validation split is not part of this config, so no eval loss is computed.")
    return notes


def sft_config_yaml(settings: StudioSettings, run_id: str, sft: Any, lora: Any, turn_rows: int = 0,
                    threads: dict[str, Any] | None = None) -> str:
    """The sft_config.yaml text: explanatory comments, then the mapping in a stable order.

    `turn_rows`: rows added by writing multi-turn chats one row per assistant turn; `threads`: the run's recorded
    CPU thread count and policy (both noted in the comments).
    """
    header = "".join(f"# {line}\n" for line in _config_notes(settings, run_id, turn_rows, threads))
    return header + yaml.safe_dump(sft_config_dict(settings, sft, lora), sort_keys=False, allow_unicode=True)


LAUNCH_SH = """#!/usr/bin/env bash
# Re-run this training with TRL's own SFT script. Install the versions in requirements.txt first.
# NUM_PROCESSES defaults to %s; each process takes a batch of per_device_train_batch_size, so the
# batch per optimiser step is that times NUM_PROCESSES (the run trained on %d process(es)).
#   N GPUs on this machine:  NUM_PROCESSES=4 bash launch.sh
#   A Slurm cluster (this folder on shared storage; one task per node, each node's GPUs):
#     srun --nodes=2 --ntasks-per-node=1 bash launch.sh
#   which runs, on every node: accelerate launch --num_machines $SLURM_NNODES --machine_rank $SLURM_NODEID
#     --main_process_ip <first node> --main_process_port 29500 --num_processes <GPUs on all nodes> ...
set -euo pipefail
cd "$(dirname "$0")"
NUM_PROCESSES="${NUM_PROCESSES:-%s}"
PRECISION="$(python -c '%s')"
if [ -n "${SLURM_NNODES:-}" ] && [ "$SLURM_NNODES" -gt 1 ]; then
  MAIN_IP="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
  exec accelerate launch --num_processes "$((NUM_PROCESSES * SLURM_NNODES))" --num_machines "$SLURM_NNODES" \\
    --machine_rank "$SLURM_NODEID" --main_process_ip "$MAIN_IP" --main_process_port 29500 \\
    -m trl.scripts.sft --config %s $PRECISION "$@"
fi
accelerate launch --num_processes "$NUM_PROCESSES" -m trl.scripts.sft --config %s $PRECISION "$@"
# The same through TRL's command line, which calls accelerate launch itself:
#   trl sft --config %s --num_processes "$NUM_PROCESSES" $PRECISION
"""
GPU_COUNT = "$(python -c 'import torch; print(max(torch.cuda.device_count(), 1))')"
# Only for precision "auto": TRL defaults to bf16, which a CPU or a pre-Ampere GPU rejects.
AUTO_PRECISION = ('import torch; print("" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else '
                  '"--bf16 false --fp16 true" if torch.cuda.is_available() else "--bf16 false --use_cpu true")')


def launch_script(settings: StudioSettings) -> str:
    """launch.sh: `accelerate launch ... -m trl.scripts.sft --config sft_config.yaml` (on N GPUs, or on every node
    of a Slurm job) and the `trl sft` form."""
    precision = AUTO_PRECISION if settings.train.precision == "auto" else "print()"
    processes = settings.train.num_processes
    default, said = (str(processes), "the run's process count") if processes > 1 else (GPU_COUNT, "every visible GPU")
    return LAUNCH_SH % (said, processes, default, precision, CONFIG_FILE, CONFIG_FILE, CONFIG_FILE)


def requirements_text() -> str:
    """requirements.txt pinning the libraries this run used."""
    pins = {k: v for k, v in library_versions().items() if k != "studio" and v != "not installed"}
    return "".join(f"{name}=={version.split('+')[0]}\n" for name, version in pins.items())


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def run_configs(run_dir: Path, settings: StudioSettings) -> tuple[Any, Any]:
    """(SFTConfig, LoraConfig) rebuilt from a saved run's settings, for a bundle written after the run."""
    from studio.train.config import build_lora_config, build_sft_config

    folder = RunFolder(run_dir)
    n_train = len(folder.read_split("train", required=False))
    has_eval = bool(folder.read_split("validation", required=False))
    return build_sft_config(settings, folder.checkpoints_dir, max(n_train, 1), has_eval), build_lora_config(settings.lora)


def write_repro_bundle(run_dir: Path, sft: Any = None, lora: Any = None, tokenizer: Any = None) -> Path:
    """Write the run's reproduce/ bundle from its settings, split and TRL configs (rebuilt when not given)."""
    folder = RunFolder(run_dir)
    settings = folder.read_settings()
    if sft is None or lora is None:
        sft, lora = run_configs(run_dir, settings)
    rows = prompt_completion_rows(run_dir, settings, tokenizer)
    turn_rows = len(rows) - len(folder.read_split("train", required=False))
    threads = recorded_threads(run_dir)
    files = {
        folder.settings_file.name: json.dumps(settings.to_dict(), indent=2),
        "fingerprint.txt": f"sha256:{data_fingerprint(run_dir, settings)}\n",
        "versions.json": json.dumps(versions_record(settings, threads), indent=2),
        DATA_FILE: _jsonl(rows),
        CONFIG_FILE: sft_config_yaml(settings, run_dir.name, sft, lora, turn_rows, threads),
        "launch.sh": launch_script(settings),
        "requirements.txt": requirements_text(),
    }

    def write(tmp: Path) -> None:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / "launch.sh").chmod(0o755)

    return replace_folder(folder.reproduce_dir, write)  # written whole first, so a reader never sees half a bundle
