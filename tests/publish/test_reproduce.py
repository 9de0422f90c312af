"""The reproducibility bundle: TRL's own parser reads the config back into the run's settings, and TRL trains on it."""
from __future__ import annotations

import copy
import importlib.util
import json
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from accelerate.commands.launch import launch_command_parser
from trl import get_peft_config
from trl.scripts.sft import make_parser

from studio.data.templates import get_template
from studio.errors import RunError
from studio.examples import Example
from studio.publish import reproduce
from studio.runs import RunFolder, create_run
from studio.settings import StudioSettings
from studio.train import config as train_config
from studio.train import steps
from tests.builders import TRAIN, make_finished_run
from tests.tiny import make_tiny_model


def configs(settings: StudioSettings) -> tuple:
    """(SFTConfig, LoraConfig) as train.config builds them; precision flags set as a GPU run would have them."""
    from studio.settings import apply_overrides

    sft = train_config.build_sft_config(apply_overrides(settings, {"train": {"precision": "fp32"}}), Path("out"), 10,
                                        False)
    sft.bf16, sft.fp16 = settings.train.precision == "bf16", settings.train.precision == "fp16"
    return sft, train_config.build_lora_config(settings.lora)


GPU_OVERRIDES = {"lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
                 "train": {"max_steps": 120, "learning_rate": 1e-4, "batch_size": 4, "grad_accum": 4,
                           "warmup_steps": 10, "lr_scheduler": "cosine", "weight_decay": 0.01, "seed": 7,
                           "gradient_checkpointing": True, "logging_steps": 5, "save_steps": 50, "precision": "fp32",
                           "completion_only_loss": False, "group_by_length": False},
                 "data": {"max_length": 512, "template": "alpaca"},
                 "model": {"model": "Qwen/Qwen2.5-0.5B", "revision": "main"}}


def _parse(path, *extra: str):
    """The config through the parser `trl sft` itself builds (ScriptArguments, SFTConfig, ModelConfig, datasets)."""
    return make_parser().parse_args_and_config(args=["--config", str(path), *extra])


@pytest.fixture()
def bundle(runs_dir, tiny_tokenizer):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer)
    return run_dir, reproduce.write_repro_bundle(run_dir)


def test_bundle_holds_every_file(bundle):
    run_dir, folder = bundle
    assert folder == run_dir / "reproduce"
    assert {p.name for p in folder.iterdir()} == {
        "settings.json", "fingerprint.txt", "versions.json", "sft_config.yaml", "launch.sh", "requirements.txt",
        "train_prompt_completion.jsonl"}
    assert json.loads((folder / "settings.json").read_text()) == json.loads((run_dir / "settings.json").read_text())
    assert (folder / "fingerprint.txt").read_text() == f"sha256:{reproduce.data_fingerprint(run_dir)}\n"
    versions = json.loads((folder / "versions.json").read_text())
    assert set(versions["libraries"]) == {"torch", "transformers", "peft", "trl", "datasets", "accelerate",
                                          "huggingface_hub", "studio"}
    assert versions["seeds"] == {"train": 42, "data": 42, "generation": 0} and versions["python"].startswith("3.")
    pins = (folder / "requirements.txt").read_text()
    assert "trl==" in pins and "+cpu" not in pins
    assert not (run_dir / ".reproduce.tmp").exists()


def test_rows_are_exactly_what_the_template_renders(bundle):
    folder = bundle[1]
    rows = [json.loads(line) for line in (folder / reproduce.DATA_FILE).read_text().splitlines()]
    template = get_template("instruction_output")
    assert rows == [{"prompt": template.render(e).prompt, "completion": template.render(e).completion} for e in TRAIN]


def test_the_models_own_chat_template_is_rendered_with_the_given_tokenizer(runs_dir, tiny_tokenizer):
    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = ("{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, {"data": {"template": "tokenizer"}})
    rows = reproduce.prompt_completion_rows(run_dir, RunFolder(run_dir).read_settings(), tokenizer)
    assert rows[0] == {"prompt": "<|user|>\nUppercase the word.\n\napple<|end|>\n<|assistant|>\n",
                       "completion": "APPLE<|end|>\n"}


def test_a_multi_turn_chat_gives_one_row_per_assistant_turn(runs_dir, tiny_tokenizer):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, {"data": {"template": "chat"}}, compare=False)
    chat = Example("And kite?", "KITE", history=(("user", "Uppercase apple."), ("assistant", "APPLE")))
    steps.write_splits(run_dir, SimpleNamespace(train=[chat, *TRAIN[:2]], test=TRAIN[2:3], validation=[]))
    folder = reproduce.write_repro_bundle(run_dir)
    rows = [json.loads(line) for line in (folder / reproduce.DATA_FILE).read_text().splitlines()]
    assert rows[:2] == [
        {"prompt": "<|im_start|>user\nUppercase apple.<|im_end|>\n<|im_start|>assistant\n", "completion": "APPLE<|im_end|>"},
        {"prompt": "<|im_start|>user\nUppercase apple.<|im_end|>\n<|im_start|>assistant\nAPPLE<|im_end|>\n"
                   "<|im_start|>user\nAnd kite?<|im_end|>\n<|im_start|>assistant\n", "completion": "KITE<|im_end|>"},
    ]
    assert len(rows) == 4
    config = (folder / reproduce.CONFIG_FILE).read_text()
    assert "# Multi-turn chats are written as one row per assistant turn (1 extra rows)" in config


def test_fingerprint_covers_rows_template_and_system_prompt(bundle):
    run_dir, _ = bundle
    settings = RunFolder(run_dir).read_settings()
    first = reproduce.data_fingerprint(run_dir, settings)
    assert len(first) == 64 and first == reproduce.data_fingerprint(run_dir, settings)
    unused_custom = StudioSettings.from_dict({"data": {"custom_template": "{instruction}{output}"}})
    assert reproduce.data_fingerprint(run_dir, unused_custom) == reproduce.data_fingerprint(run_dir, StudioSettings())
    for changed in ({"template": "alpaca"}, {"system_prompt": "Be brief."},
                    {"template": "custom", "custom_template": "Q: {instruction} A: {output}"}):
        assert reproduce.data_fingerprint(run_dir, StudioSettings.from_dict({"data": changed})) != first
    (run_dir / "data" / "train.jsonl").write_text("{}\n", encoding="utf-8")
    assert reproduce.data_fingerprint(run_dir, settings) != first


def test_a_run_without_training_data_has_no_bundle(runs_dir):
    run_dir = create_run(runs_dir, StudioSettings()).path
    with pytest.raises(RunError, match="no saved training data"):
        reproduce.write_repro_bundle(run_dir)


def test_trl_parser_reads_back_the_default_run(bundle):
    run_dir, folder = bundle
    # precision "auto" leaves bf16 to the machine; on this CPU, launch.sh adds what the line below adds.
    _, args, model, data = _parse(folder / "sft_config.yaml", "--bf16", "false", "--use_cpu", "true")
    s = RunFolder(run_dir).read_settings()
    assert model.model_name_or_path == "google/gemma-3-270m" and model.dtype == "float32" and model.use_peft
    assert (model.lora_r, model.lora_alpha, model.lora_dropout) == (s.lora.r, s.lora.alpha, s.lora.dropout)
    assert model.lora_target_modules == "all-linear" and not model.load_in_4bit
    assert data.datasets[0].path == "json" and data.datasets[0].data_files == reproduce.DATA_FILE
    assert (args.learning_rate, args.num_train_epochs, args.max_steps) == (1e-3, 0.75, -1)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (4, 1)
    assert args.max_length == s.data.max_length and args.completion_only_loss is True and args.packing is False
    assert args.activation_checkpointing is False and args.logging_steps == 1 and args.seed == 42
    assert args.optim.value == "adamw_torch_fused" and args.lr_scheduler_type.value == "linear"
    assert args.bf16 is False and args.output_dir == "output" and args.save_strategy.value == "steps" and args.save_steps == 20


def test_trl_parser_reads_back_every_changed_setting(runs_dir, tiny_tokenizer):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, GPU_OVERRIDES)
    _, args, model, _ = _parse(reproduce.write_repro_bundle(run_dir) / "sft_config.yaml")
    t, lora = RunFolder(run_dir).read_settings().train, RunFolder(run_dir).read_settings().lora
    assert model.model_name_or_path == "Qwen/Qwen2.5-0.5B" and model.model_revision == "main"
    assert (model.lora_r, model.lora_alpha, model.lora_dropout) == (lora.r, lora.alpha, lora.dropout)
    assert model.lora_target_modules == ["q_proj", "v_proj"]
    assert (args.max_steps, args.learning_rate, args.per_device_train_batch_size) == (120, t.learning_rate, 4)
    assert (args.gradient_accumulation_steps, args.warmup_steps, args.weight_decay, args.seed) == (4, 10, 0.01, 7)
    assert args.lr_scheduler_type.value == "cosine" and args.activation_checkpointing is True
    assert args.logging_steps == 5 and args.save_steps == 50 and args.save_strategy.value == "steps"
    assert args.completion_only_loss is False and args.train_sampling_strategy == "random"
    assert args.max_length == 512 and args.bf16 is False and args.fp16 is False


@pytest.mark.parametrize("targets", [[], ["q_proj"], ["q_proj", "down_proj"]])
def test_trl_adapts_the_same_layers_as_the_studio(runs_dir, tiny_tokenizer, targets):
    from peft import get_peft_model

    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, {"lora": {"target_modules": targets}}, compare=False)
    _, _, model_args, _ = _parse(reproduce.write_repro_bundle(run_dir) / "sft_config.yaml", "--bf16", "false",
                                 "--use_cpu", "true")
    settings = RunFolder(run_dir).read_settings()

    def adapted(config) -> set[str]:
        wrapped = get_peft_model(make_tiny_model(tiny_tokenizer), config)
        return {name for name, _ in wrapped.named_modules() if name.endswith("lora_A")}

    assert adapted(get_peft_config(model_args)) == adapted(train_config.build_lora_config(settings.lora,
                                                                                       make_tiny_model(tiny_tokenizer)))


def test_trl_trains_from_the_bundle(bundle, tiny_tokenizer, tmp_path, monkeypatch):
    from trl.scripts.sft import main

    _, folder = bundle
    make_tiny_model(tiny_tokenizer).save_pretrained(tmp_path / "tiny")
    tiny_tokenizer.save_pretrained(tmp_path / "tiny")
    monkeypatch.chdir(folder)  # the config names its data file relative to the bundle, as launch.sh runs it
    parsed = _parse("sft_config.yaml", "--bf16", "false", "--use_cpu", "true", "--model_name_or_path",
                    str(tmp_path / "tiny"), "--max_steps", "1", "--output_dir", str(tmp_path / "out"))
    main(*parsed)
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


def test_launch_script_runs_trls_sft_module_through_accelerate(bundle):
    _, folder = bundle
    script = (folder / "launch.sh").read_text()
    subprocess.run(["bash", "-n", str(folder / "launch.sh")], check=True)
    line = next(x for x in script.splitlines() if x.startswith("accelerate launch"))
    assert "-m trl.scripts.sft --config sft_config.yaml" in line
    assert "trl sft --config sft_config.yaml" in script and (folder / "launch.sh").stat().st_mode & 0o100
    assert importlib.util.find_spec("trl.scripts.sft") is not None
    words = [w.replace("$NUM_PROCESSES", "2") for w in shlex.split(line.replace('"$@"', ""))]
    parsed = launch_command_parser().parse_args([w for w in words[2:] if w != "$PRECISION"])
    assert parsed.module and parsed.training_script == "trl.scripts.sft" and parsed.num_processes == 2
    assert parsed.training_script_args == ["--config", "sft_config.yaml"]


def test_precision_is_left_to_the_machine_only_for_auto(runs_dir, tiny_tokenizer):
    auto = reproduce.launch_script(StudioSettings())
    fixed = reproduce.launch_script(StudioSettings.from_dict({"train": {"precision": "bf16"}}))
    assert "--use_cpu true" in auto and "--use_cpu" not in fixed
    fp16 = StudioSettings.from_dict({"train": {"precision": "fp16"}})
    assert reproduce.sft_config_dict(fp16, *configs(fp16))["fp16"] is True
    assert "bf16" not in reproduce.sft_config_dict(StudioSettings(), *configs(StudioSettings()))


def test_config_notes_what_trl_cannot_express():
    settings = StudioSettings.from_dict({"lora": {"bias": "all"}, "data": {"validation_fraction": 0.1},
                                         "train": {"load_in_4bit": True}})
    text = reproduce.sft_config_yaml(settings, "20260101-000000-abcdef", *configs(settings))
    assert "bias=none" in text and "validation" in text and "load_in_4bit: true" in text
    assert reproduce.sft_config_dict(settings, *configs(settings))["bnb_4bit_quant_type"] == "nf4"


def test_the_bundle_reads_the_run_s_own_config_objects():
    settings = StudioSettings()
    sft, lora = configs(settings)
    sft.learning_rate, sft.max_length, lora.r = 0.123, 77, 5  # the objects, not the settings, are what trained
    config = reproduce.sft_config_dict(settings, sft, lora)
    assert (config["learning_rate"], config["max_length"], config["lora_r"]) == (0.123, 77, 5)
    assert set(reproduce.SFT_FIELDS) <= set(config)


def test_a_changed_setting_reaches_the_run_s_config_and_its_bundle_alike():
    settings = StudioSettings.from_dict({"train": {"learning_rate": 3e-4, "batch_size": 2}, "lora": {"r": 4}})
    sft, lora = configs(settings)
    config = reproduce.sft_config_dict(settings, sft, lora)
    assert (sft.learning_rate, sft.per_device_train_batch_size, lora.r) == (3e-4, 2, 4)
    assert (config["learning_rate"], config["per_device_train_batch_size"], config["lora_r"]) == (3e-4, 2, 4)
