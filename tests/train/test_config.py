"""Settings -> LoraConfig / SFTConfig (studio.train.config)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.errors import SettingsError
from studio.settings import LoraSettings, StudioSettings, apply_overrides
from studio.train.config import build_lora_config, build_sft_config, estimate_total_steps, resolve_precision
from tests.needs import need


def _all_changed() -> StudioSettings:
    return apply_overrides(StudioSettings(), {
        "data": {"max_length": 128},
        "train": {
            "epochs": 2.0, "max_steps": 7, "learning_rate": 1e-4, "batch_size": 3, "grad_accum": 2, "warmup_steps": 4,
            "lr_scheduler": "cosine", "weight_decay": 0.01, "optimizer": "adafactor", "max_grad_norm": 0.5,
            "logging_steps": 5, "eval_steps": 6, "save_steps": 9, "seed": 7, "completion_only_loss": False,
            "group_by_length": False, "gradient_checkpointing": True,
        },
    })


def test_lora_config_maps_every_setting(tiny_model):
    lora = LoraSettings(r=8, alpha=16, dropout=0.1, target_modules=["q_proj", "v_proj"], bias="lora_only")
    config = build_lora_config(lora, tiny_model)
    assert (config.r, config.lora_alpha, config.lora_dropout, config.bias) == (8, 16, 0.1, "lora_only")
    assert set(config.target_modules) == {"q_proj", "v_proj"}
    assert config.task_type == "CAUSAL_LM"


def test_lora_config_defaults_to_every_linear_layer_but_the_head(tiny_model):
    config = build_lora_config(LoraSettings(), tiny_model)
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_lora_config_rejects_modules_the_model_lacks(tiny_model):
    with pytest.raises(SettingsError, match="query_key_value"):
        build_lora_config(LoraSettings(target_modules=["query_key_value"]), tiny_model)


def test_sft_config_maps_every_training_setting(tmp_path: Path):
    c = build_sft_config(_all_changed(), tmp_path, n_train=40, has_eval=True)
    assert c.output_dir == str(tmp_path)
    assert (c.num_train_epochs, c.max_steps, c.learning_rate) == (2.0, 7, 1e-4)
    assert (c.per_device_train_batch_size, c.per_device_eval_batch_size, c.gradient_accumulation_steps) == (3, 3, 2)
    assert (c.warmup_steps, c.lr_scheduler_type.value, c.weight_decay) == (4, "cosine", 0.01)
    assert (c.optim.value, c.max_grad_norm, c.seed) == ("adafactor", 0.5, 7)
    assert (c.logging_steps, c.eval_strategy.value, c.eval_steps) == (5, "steps", 6)
    assert (c.save_strategy.value, c.save_steps, c.save_total_limit) == ("steps", 9, 2)
    assert (c.max_length, c.completion_only_loss) == (128, False)
    assert c.activation_checkpointing is True and c.gradient_checkpointing is True
    assert c.train_sampling_strategy == "random"


def test_sft_config_defaults_are_the_fast_cpu_ones(tmp_path: Path):
    c = build_sft_config(StudioSettings(), tmp_path, n_train=40, has_eval=False)
    assert c.bf16 is False and c.fp16 is False  # TRL would default bf16=True, which a CPU rejects
    assert c.gradient_checkpointing is False and c.activation_checkpointing is False
    assert c.logging_steps == 1 and c.logging_first_step
    assert c.train_sampling_strategy == "group_by_length"
    assert c.completion_only_loss is True and c.max_steps == -1 and c.num_train_epochs == 0.75
    assert c.eval_strategy.value == "no" and c.save_strategy.value == "steps" and c.save_steps == 20
    assert c.report_to == [] or c.report_to == "none" or c.report_to == ["none"]
    assert c.dataloader_num_workers == 0 and c.remove_unused_columns is False
    assert c.dataset_kwargs == {"skip_prepare_dataset": True} and not c.packing
    assert c.use_cpu


def test_eval_by_steps_needs_a_validation_split(tmp_path: Path):
    c = build_sft_config(_all_changed(), tmp_path, n_train=40, has_eval=False)
    assert c.eval_strategy.value == "no"


def test_precision_on_cpu_is_fp32_and_gpu_choices_are_refused():
    assert resolve_precision("auto") == (False, False)
    assert resolve_precision("fp32") == (False, False)
    with pytest.raises(SettingsError, match="GPU"):
        resolve_precision("bf16")


def test_precision_on_gpu_prefers_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto") == (True, False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto") == (False, True)
    assert resolve_precision("fp32") == (False, False)


def test_total_steps_estimate():
    s = apply_overrides(StudioSettings(), {"train": {"batch_size": 4, "epochs": 2.0}})
    assert estimate_total_steps(10, s) == 6
    s = apply_overrides(s, {"train": {"grad_accum": 2, "epochs": 1.0}})
    assert estimate_total_steps(10, s) == 2  # 3 batches -> 2 updates, the last one shorter
    s = apply_overrides(s, {"train": {"max_steps": 3}})
    assert estimate_total_steps(10, s) == 3


def test_report_to_defaults_to_none_and_names_the_run(tmp_path: Path):
    config = build_sft_config(StudioSettings(), tmp_path / "20260101-000000-abcdef" / "checkpoints", 10, False)
    assert config.report_to == [] and config.run_name == "20260101-000000-abcdef"
    assert config.project == "instruction-tuning-studio"


def test_report_to_a_missing_package_is_one_sentence(tmp_path: Path, monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    for tracker, package in (("tensorboard", "tensorboard"), ("trackio", "trackio")):
        settings = apply_overrides(StudioSettings(), {"train": {"report_to": tracker}})
        with pytest.raises(SettingsError) as caught:
            build_sft_config(settings, tmp_path, 10, False)
        assert str(caught.value) == (f"train.report_to {tracker} needs the {package} package; install it with pip "
                                     f"install {package}, or set train.report_to to none.")


def test_report_to_only_takes_known_trackers():
    with pytest.raises(SettingsError, match="train.report_to must be one of none, trackio, tensorboard"):
        apply_overrides(StudioSettings(), {"train": {"report_to": "wandb"}})


def read_scalars(folder: Path) -> dict[str, list[float]]:
    """Scalars from TensorBoard event files: TFRecord framing (length, crc, data, crc) around Event protos."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, list[float]] = {}
    for path in folder.rglob("events.out.tfevents.*"):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(value.simple_value)
    return scalars


def test_tensorboard_writes_event_files_into_the_run_folder(tmp_path: Path, tiny_loader):
    need("tensorboardX")  # requirements-dev installs it
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.runs import RunFolder

    settings = apply_overrides(StudioSettings(), {
        "data": {"max_test_examples": 2, "max_length": 64},
        "train": {"max_steps": 3, "batch_size": 4, "threads": 1, "report_to": "tensorboard"},
    })
    job = TrainingJob(settings, tmp_path / "runs", queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    assert job.join(timeout=120) and job.status == "completed", job.error
    scalars = read_scalars(RunFolder(job.run_dir).tensorboard_dir)
    assert len(scalars["train/loss"]) == 3 and all(loss > 0 for loss in scalars["train/loss"])
    assert "train/learning_rate" in scalars
