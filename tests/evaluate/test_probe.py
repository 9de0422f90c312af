"""The probe through lm-evaluation-harness on the tiny model: task files, scores in [0, 1], the head shortcut, stop."""
from __future__ import annotations

import pytest
import torch
import yaml
from peft import LoraConfig, get_peft_model

from studio.errors import HubUnavailableError
from studio.evaluate import probe
from studio.evaluate.probe import ProbeError, builtin_tasks, check_tasks, load_tasks, parse_tasks, run_probe
from studio.evaluate.probe_items import PROBE_DIR, build_items
from studio.evaluate.probe_record import ProbeStopped


def peft_model(model, b_std: float = 0.0):
    """The tiny model under a LoRA adapter; B = 0 (as peft initialises it) leaves the outputs unchanged."""
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    if b_std:
        torch.manual_seed(0)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, b_std)
    return model.eval()


def test_task_files_parse_and_name_their_data():
    group = yaml.safe_load((PROBE_DIR / "studio_probe.yaml").read_text())
    assert group["group"] == "studio_probe" and group["task"] == builtin_tasks()
    assert {p.stem for p in PROBE_DIR.glob("probe_*.yaml")} == set(builtin_tasks())
    for name in builtin_tasks():
        config = yaml.safe_load((PROBE_DIR / f"{name}.yaml").read_text())
        assert config["task"] == name and config["output_type"] == "multiple_choice"
        assert config["dataset_path"] == "json"
        assert (PROBE_DIR / config["dataset_kwargs"]["data_files"]["test"]).is_file()
        assert {m["metric"] for m in config["metric_list"]} == {"acc", "acc_norm"}


def test_lm_eval_loads_every_category_offline():
    tasks = load_tasks(builtin_tasks())
    assert list(tasks) == builtin_tasks()
    sizes = {name: len(task.test_docs()) for name, task in tasks.items()}
    assert sizes == {f"probe_{c}": len(rows) for c, rows in build_items().items()}


def test_task_names_from_text_or_list():
    assert parse_tasks(None) == parse_tasks("") == parse_tasks("studio_probe") == builtin_tasks()
    assert parse_tasks("arc_easy, hellaswag arc_easy") == ["arc_easy", "hellaswag"]
    assert parse_tasks(["probe_reading"]) == ["probe_reading"]


def test_a_hub_task_offline_is_one_sentence():
    with pytest.raises(HubUnavailableError, match="needs its data from the Hugging Face Hub"):
        check_tasks(["arc_easy"])


def test_without_lm_eval_the_probe_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(probe, "lm_eval_installed", lambda: False)
    with pytest.raises(ProbeError, match=r"pip install 'lm-eval"):
        check_tasks(builtin_tasks())


def test_probe_scores_every_category_in_the_unit_interval(tiny_model, tiny_tokenizer):
    model = peft_model(tiny_model)
    calls = []
    result = run_probe(model, tiny_tokenizer, batch_size=16, progress=lambda *args: calls.append(args))
    assert [c.task for c in result.categories] == builtin_tasks()
    for c in result.categories:
        assert 0.0 <= c.base <= 1.0 and 0.0 <= c.tuned <= 1.0 and c.n == 40
    # A zero LoRA B changes nothing: the same answers, a zero interval, no loss.
    assert all(c.base == c.tuned and (c.low, c.high) == (0.0, 0.0) for c in result.categories)
    assert result.sentence == "No significant loss."
    assert {w for w, _, _ in calls} == {"base", "tuned"}
    for which in ("base", "tuned"):
        done = [d for w, d, _ in calls if w == which]
        assert done == sorted(done) and done[-1] == calls[-1][2]


def test_adapter_is_off_for_the_base_and_on_for_the_tuned_model(tiny_model, tiny_tokenizer):
    plain = run_probe(tiny_model, tiny_tokenizer, tasks=["probe_reading", "probe_arithmetic"])
    model = peft_model(tiny_model, b_std=2.0)
    result = run_probe(model, tiny_tokenizer, tasks="probe_reading probe_arithmetic")
    for task in ("probe_reading", "probe_arithmetic"):
        assert result.items[task]["base"] == plain.items[task]["base"]  # disable_adapter() is the base model
    assert any(result.items[t]["tuned"] != result.items[t]["base"] for t in result.items)


def test_stop_between_batches_raises_and_reports_nothing(tiny_model, tiny_tokenizer):
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(ProbeStopped, match="stopped; nothing was saved"):
        run_probe(peft_model(tiny_model), tiny_tokenizer, batch_size=8, should_stop=should_stop)
    assert len(asked) == 3


@pytest.mark.slow
def test_embedded_base_model_is_above_chance_and_a_destroyed_adapter_shows_a_loss():
    """The real Gemma 3 270M: every category clearly above chance (1 in 4); random LoRA B weights lose points."""
    from studio.model.loading import load_base_model
    from studio.settings import ModelSettings

    loaded = load_base_model(ModelSettings(), for_training=False)
    model = get_peft_model(loaded.model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    torch.manual_seed(0)
    with torch.no_grad():  # a deliberately destructive adapter: LoRA B drawn at random instead of zero
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.1)
    result = run_probe(model.eval(), loaded.tokenizer)
    for c in result.categories:  # 18 of 40 or more: P < 0.005 for a model guessing one in four
        assert c.base >= 18 / 40, f"{c.label}: base accuracy {c.base:.0%} is too close to chance"
    assert result.overall.base >= 0.7
    assert result.forgot and result.overall.high < -0.1 and result.sentence.startswith("Lost ")
