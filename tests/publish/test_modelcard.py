"""The model card: Hub front matter, the facts of the run, escaped user text, and a loss chart the Hub can show."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from studio.errors import RunError
from studio.publish import modelcard, reproduce
from studio.runs import create_run
from studio.settings import StudioSettings
from tests.builders import make_finished_run


def _split(card: str) -> tuple[dict, str]:
    _, header, body = card.split("---\n", 2)
    return yaml.safe_load(header), body


@pytest.fixture()
def run_dir(runs_dir, tiny_tokenizer):
    return make_finished_run(runs_dir, tiny_tokenizer)[0]


def test_front_matter_of_the_embedded_model(run_dir):
    meta, body = _split(modelcard.model_card(run_dir))
    assert meta["base_model"] == "google/gemma-3-270m" and meta["library_name"] == "peft"
    assert meta["license"] == "gemma" and meta["tags"] == ["lora", "sft", "instruction-tuning", "trl"]
    assert "Gemma Terms of Use" in body and "https://ai.google.dev/gemma/terms" in body
    assert "Q4_K_M" in body  # the adapter was trained on the dequantised GGUF, and the card says so


def test_body_states_the_facts_of_the_run(run_dir):
    _, body = _split(modelcard.model_card(run_dir))
    assert f"sha256:{reproduce.data_fingerprint(run_dir)}" in body
    assert "Word tasks" in body and "6 training rows, 2 held out" in body
    assert "`instruction_output`" in body and "### Instruction:\nYour instruction here" in body
    assert "| r | 4 |" in body and "| alpha | 8 |" in body and "| target\\_modules | all linear layers |" in body
    assert "| learning\\_rate | 0.001 |" in body and "| max\\_length | 256 |" in body
    for library, version in reproduce.library_versions().items():
        assert f"| {modelcard.cell(library)} | {modelcard.cell(version)} |" in body
    assert "![Training loss by step](loss.svg)" in body and "| 15 | 0.2000 |" in body and "| 1 | 3.0000 |" in body
    assert "| Exact match | 0% | 50% | +50.0 | +0.0 to +100.0 | not significant |" in body
    assert "| BLEU |" in body and "| chrF |" in body and "| ROUGE\\-L |" not in body and "| ROUGE-L |" in body
    assert "95% CI of the change" in body and "- Answers cut at the first" in body and "better" in body
    assert 'PeftModel.from_pretrained(base, "path/to/this/folder")' in body
    assert "trl sft --config sft_config.yaml" in body


def test_loss_table_samples_long_histories():
    points = [(float(i), 1.0 / i) for i in range(1, 501)]
    sampled = modelcard.sampled_steps(points)
    assert len(sampled) == modelcard.LOSS_ROWS and sampled[0] == points[0] and sampled[-1] == points[-1]


def test_merged_card_loads_with_transformers_alone(run_dir):
    meta, body = _split(modelcard.model_card(run_dir, kind="merged", repo_id="me/merged"))
    assert meta["library_name"] == "transformers" and "merged" in meta["tags"]
    assert 'AutoModelForCausalLM.from_pretrained("me/merged")' in body and "PeftModel" not in body


def test_no_comparison_no_results_section(runs_dir, tiny_tokenizer):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    assert "Before and after" not in modelcard.model_card(run_dir)


def test_user_text_cannot_inject_markup(run_dir):
    _, body = _split(modelcard.model_card(run_dir))
    assert "<b>" not in body and "Count the words \\| &lt;b&gt;bold&lt;/b&gt;" in modelcard.cell(
        "Count the words | <b>bold</b>")
    assert modelcard.cell("a\nb") == "a<br>b"
    assert modelcard.code("my_rows`x\ny") == "`my_rows'x y`"
    assert modelcard.fenced("a ```` b") == ["`````text", "a ```` b", "`````"]


def test_hub_model_and_dataset(runs_dir, tiny_tokenizer):
    overrides = {"model": {"model": "Qwen/Qwen2.5-0.5B"}, "data": {"dataset": "tatsu-lab/alpaca"}}
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, overrides)
    meta, body = _split(modelcard.model_card(run_dir))
    assert meta["base_model"] == "Qwen/Qwen2.5-0.5B" and meta["datasets"] == ["tatsu-lab/alpaca"]
    assert "license" not in meta and "inherits the license of its base model" in body
    assert "https://huggingface.co/datasets/tatsu-lab/alpaca" in body and "Q4_K_M" not in body


def test_local_model_and_file_are_named_without_their_path(runs_dir, tiny_tokenizer, tmp_path):
    model_dir, data = tmp_path / "secret" / "my-model", tmp_path / "secret" / "rows.jsonl"
    model_dir.mkdir(parents=True)
    data.write_text("{}\n")
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer,
                                   {"model": {"model": str(model_dir)}, "data": {"dataset": str(data)}})
    meta, body = _split(modelcard.model_card(run_dir))
    assert "base_model" not in meta and "datasets" not in meta
    assert "my-model" in body and "rows.jsonl" in body and "secret" not in body


def test_write_card_adds_the_chart_and_gemma_notice(run_dir, tmp_path):
    card = modelcard.write_card(run_dir, tmp_path / "out")
    assert card.read_text(encoding="utf-8") == modelcard.model_card(run_dir)
    svg = ET.fromstring((tmp_path / "out" / "loss.svg").read_text())
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.find("{http://www.w3.org/2000/svg}polyline") is not None
    assert "Gemma Terms of Use" in (tmp_path / "out" / "NOTICE").read_text()
    assert (tmp_path / "out" / "GEMMA_TERMS.html").stat().st_size > 1000


def test_an_empty_history_still_draws_a_valid_chart():
    ET.fromstring(modelcard.loss_svg([]))


def test_cards_need_a_run(runs_dir, tmp_path):
    with pytest.raises(RunError):
        modelcard.write_card(runs_dir / "20260101-000000-abcdef", tmp_path)
    run_dir = create_run(runs_dir, StudioSettings()).path
    with pytest.raises(RunError, match="no saved training data"):
        modelcard.model_card(run_dir)
    with pytest.raises(ValueError):
        modelcard.model_card(run_dir, kind="onnx")


def test_the_results_name_the_answer_loss_and_the_answer_length(runs_dir, tiny_tokenizer, tiny_loader):
    from studio import pipeline
    from studio.settings import GenerationSettings

    run_dir = make_finished_run(runs_dir, tiny_tokenizer, compare=False)[0]
    rm = pipeline.open_run(runs_dir, run_dir.name, model_loader=tiny_loader)
    pipeline.compare_run(rm, GenerationSettings(max_new_tokens=12))
    _, body = _split(modelcard.model_card(run_dir))
    assert "exact match) and the held-out answer loss (how likely each model finds the reference answers" in body
    assert "| Answer perplexity |" in body and "- Answers up to 12 tokens: all 2 references fit" in body


def test_the_results_name_the_prompt_only_baseline_and_a_saved_judging(run_dir):
    from studio.evaluate.baseline_record import score_baseline
    from studio.evaluate.comparison import load_comparison, save_comparison
    from studio.evaluate.generation import Answer
    from studio.evaluate.judge_record import JudgeResult, Verdict, save_judge

    comparison = load_comparison(run_dir)
    answers = [Answer(row.reference, row.reference, 1, "eos") for row in comparison.rows]
    comparison.baseline = score_baseline(comparison.rows, answers, 2, "2-shot")
    save_comparison(run_dir, comparison)
    _, body = _split(modelcard.model_card(run_dir))
    assert re.search(r"\n- Prompting alone \(2-shot\): BLEU [\d.]+; tuned [\d.]+, ", body) and "A judge" not in body
    verdicts = [Verdict(i, order, "", "tie") for i in range(len(comparison.rows))
                for order in ("opponent_first", "tuned_first")]
    save_judge(run_dir, JudgeResult("a judge", "fake", "", "baseline", verdicts, 0.7, planned=len(comparison.rows)))
    _, body = _split(modelcard.model_card(run_dir))
    assert "A judge preferred the tuned answer over the prompt-only baseline's in 0%" in body
