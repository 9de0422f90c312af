"""GGUF export of a run (file + Modelfile + card) and its check: the GGUF answers the held-out prompts as the studio
did, whether the studio's answers come from the saved comparison or are generated for the check."""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from studio.errors import ExportError
from studio.model.loading import LoadedModel
from studio.pipeline import compare_run, open_run
from studio.publish import gguf_export
from studio.publish.verify import load_checks
from studio.runs import RunFolder
from studio.settings import GenerationSettings
from tests.builders import make_finished_run
from tests.publish.gotemplate import parse_modelfile
from tests.tiny import save_tiny_model, tiny_loader


@pytest.fixture()
def run(runs_dir, tiny_tokenizer):
    """A finished, not yet compared run of the tiny model (its adapter changes the answers)."""
    return make_finished_run(runs_dir, tiny_tokenizer, compare=False)[0]


def test_export_writes_the_file_its_modelfile_and_card(run):
    steps = []
    result = gguf_export.export_gguf(run, "f16", base_loader=tiny_loader, progress=lambda f, m: steps.append(f))
    folder = RunFolder(run)
    assert result.path == folder.gguf_file("f16") and result.path.is_file() and result.size_bytes > 0
    assert steps[-1] == 1.0 and steps == sorted(steps)
    names = {p.name for p in folder.gguf_dir("f16").iterdir()}
    assert names == {result.path.name, "Modelfile", "README.md", "loss.svg", "NOTICE", "GEMMA_TERMS.html"}
    commands = dict(parse_modelfile(result.modelfile.read_text()))
    assert commands["from"] == f"./{result.path.name}" and "### Instruction:" in commands["template"]
    card = (folder.gguf_dir("f16") / "README.md").read_text()
    assert f'gguf_file="{result.path.name}"' in card and "ollama create" in card and "- gguf" in card


def test_verify_generates_the_studio_answers_when_the_run_was_not_compared(run):
    check = gguf_export.verify_export(run, "f16", base_loader=tiny_loader)
    assert check.studio_answers == "generated" and check.n == 2
    assert check.n_equal == check.n and check.bleu_gguf == check.bleu_studio
    assert all(row["gguf"] for row in check.rows)  # real answers, not empty ones
    assert load_checks(run)["f16"] == check
    card = (RunFolder(run).gguf_dir("f16") / "README.md").read_text()
    assert "## GGUF export check" in card and "| 2/2 |" in card


def test_verify_uses_the_saved_comparison_and_q8_0_reports_its_share(run):
    compare_run(open_run(run.parent, run.name, model_loader=tiny_loader), GenerationSettings(max_new_tokens=10))
    f16 = gguf_export.verify_export(run, "f16", base_loader=tiny_loader)
    assert f16.studio_answers == "comparison" and f16.n_equal == f16.n == 2
    q8 = gguf_export.verify_export(run, "q8_0", base_loader=tiny_loader)  # exports the q8_0 file first
    assert RunFolder(run).gguf_file("q8_0").is_file() and 0 <= q8.share_equal <= 1
    assert set(load_checks(run)) == {"f16", "q8_0"}
    merged_card = (RunFolder(run).exports_dir / "merged").exists()
    assert not merged_card  # checking needs no merged folder on disk


def test_exporting_again_drops_the_check_of_the_replaced_file(run):
    gguf_export.verify_export(run, "f16", base_loader=tiny_loader)
    gguf_export.export_gguf(run, "f16", base_loader=tiny_loader)
    assert "f16" not in load_checks(run)


def test_an_unsupported_architecture_writes_nothing(run, tiny_tokenizer):
    def gpt2_loader(settings, token=None):
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tiny_tokenizer), n_embd=32, n_layer=1, n_head=2))
        return LoadedModel(model, tiny_tokenizer, "gpt2", "local", 0.0, False)

    from peft import LoraConfig, get_peft_model

    model = get_peft_model(gpt2_loader(None).model, LoraConfig(r=2, target_modules=["c_attn"]))
    with pytest.raises(ExportError, match="works for Gemma 3, Llama or Qwen2 models"):
        gguf_export.export_gguf(run, "f16", model=model)
    assert not RunFolder(run).gguf_dir("f16").exists()


def test_a_bad_quantisation_is_one_sentence(run):
    with pytest.raises(ExportError, match="Choose a GGUF quantisation of f16 or q8_0"):
        gguf_export.export_gguf(run, "q4_k", base_loader=tiny_loader)


def test_size_estimates_come_from_the_base_weights(runs_dir, tiny_tokenizer, tmp_path):
    folder = save_tiny_model(tmp_path / "tiny-model", tiny_tokenizer)
    run, model = make_finished_run(runs_dir, tiny_tokenizer, overrides={"model": {"model": str(folder)}})
    n_params = sum(p.numel() for p in {id(p): p for p in model.get_base_model().parameters()}.values())
    n_params -= sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    sizes = gguf_export.size_estimates(run)
    assert sizes["merged"] == 4 * n_params and sizes["gguf-f16"] == 2 * n_params
    assert sizes["gguf-q8_0"] < sizes["gguf-f16"]


@pytest.mark.slow
def test_the_embedded_model_exports_and_verifies(runs_dir):
    """The real Gemma 3 270M: a LoRA with non-zero weights, exported as f16 GGUF and checked on 3 prompts."""
    from peft import get_peft_model

    from studio.model.loading import load_base_model
    from studio.settings import StudioSettings
    from studio.train import config, steps
    from tests.builders import TEST, TRAIN

    settings_overrides = {"lora": {"r": 4, "alpha": 8}, "data": {"max_test_examples": 3},
                          "generation": {"max_new_tokens": 6}}
    run, _ = make_finished_run(runs_dir, _tiny_tok(), overrides=settings_overrides, compare=False, adapter=False)
    loaded = load_base_model(StudioSettings().model, for_training=False)
    model = get_peft_model(loaded.model, config.build_lora_config(StudioSettings.from_dict(settings_overrides).lora,
                                                                   loaded.model))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.01)
    steps.save_adapter(model, loaded.tokenizer, run)
    RunFolder(run).write_splits({"train": TRAIN, "test": TEST + TEST[:1]})
    check = gguf_export.verify_export(run, "f16", model=model.eval())
    assert check.n == 3 and check.n_equal >= 2, check.rows
    size = RunFolder(run).gguf_file("f16").stat().st_size
    assert 0.5e9 < size < 0.6e9  # 268M weights at 2 bytes + Gemma's 262,144-token vocabulary


def _tiny_tok():
    from tests.tiny import make_tiny_tokenizer

    return make_tiny_tokenizer()


def test_the_export_answers_with_compares_length_and_loop_guard(run, monkeypatch):
    # 80 tokens (over 64): Compare answers with the loop guard, and the Modelfile, the card and the check follow it.
    compare_run(open_run(run.parent, run.name, model_loader=tiny_loader),
                GenerationSettings(max_new_tokens=80, max_new_tokens_auto=False, baseline_shots=0))
    result = gguf_export.export_gguf(run, "f16", base_loader=tiny_loader)
    commands = parse_modelfile(result.modelfile.read_text())
    assert ("num_predict", "80") in commands and ("repeat_penalty", "1.15") in commands
    assert ("repeat_last_n", "-1") in commands
    card = (RunFolder(run).gguf_dir("f16") / "README.md").read_text()
    assert "-n 80 --temp 0 --repeat-penalty 1.15 --repeat-last-n 32768" in card
    used = []
    answer = gguf_export.answer_from_gguf
    monkeypatch.setattr(gguf_export, "answer_from_gguf", lambda *a: used.append(a[3]) or answer(*a))
    check = gguf_export.verify_export(run, "f16", base_loader=tiny_loader)
    # The tiny random model's logits are near ties, which f16 rounding can flip; the real model's check is in bench.
    assert check.studio_answers == "comparison" and check.n == 2
    assert [(g.max_new_tokens, g.repetition_penalty, g.do_sample) for g in used] == [(80, 1.15, False)]


def test_an_uncompared_run_exports_with_its_sized_settings(runs_dir, tiny_tokenizer):
    from studio.publish.answer_settings import answer_settings

    long = make_finished_run(runs_dir, tiny_tokenizer, {"generation": {"max_new_tokens": 100,
                                                                       "max_new_tokens_auto": False}},
                             compare=False)[0]
    gen = answer_settings(long, tiny_tokenizer)
    assert (gen.max_new_tokens, gen.repetition_penalty, gen.do_sample) == (100, 1.15, False)
    short = answer_settings(make_finished_run(runs_dir, tiny_tokenizer, compare=False)[0], tiny_tokenizer)
    assert (short.max_new_tokens, short.repetition_penalty) == (12, 1.0)  # the word-task references fit 12
