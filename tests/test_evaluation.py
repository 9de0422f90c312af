"""Generation, scoring and the before/after comparison on the tiny in-process model."""
from __future__ import annotations

import json

import pytest
import sacrebleu
import torch
from peft import LoraConfig, get_peft_model

from studio.errors import DataError
from studio.evaluation import (
    Comparison,
    ComparisonRow,
    GenerationStopped,
    Scores,
    answer_both,
    compare,
    cut_at_stop,
    generate,
    load_comparison,
    plan_batches,
    save_comparison,
    score,
)
from studio.examples import Example
from studio.runs import create_run, read_run
from studio.settings import GenerationSettings, StudioSettings
from studio.templates import get_template
from tests.tiny import make_tiny_model

PROMPTS = [
    "### Instruction:\nUppercase the word.\n\n### Input:\napple\n\n### Response:\n",
    "apple",
    "### Instruction:\nSort the words alphabetically.\n\n### Input:\nriver ocean kite lemon mango\n\n### Response:\n",
    "What is the capital of France?",
    "Count the words. First word.",
    "### Instruction:\nReverse the letters.\n\n### Response:\n",
    "banana cherry",
]
GREEDY = GenerationSettings(max_new_tokens=12, batch_size=3)


def one_at_a_time(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """The reference: plain `model.generate` per prompt, no padding, greedy."""
    out = []
    with torch.inference_mode():
        for prompt in prompts:
            enc = tokenizer(prompt, return_tensors="pt")
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            out.append(tokenizer.decode(ids[0, enc.input_ids.shape[1]:], skip_special_tokens=True).strip())
    return out


def tuned_model(tokenizer, seed: int = 0):
    """The tiny model wrapped in a LoRA adapter whose B weights are non-zero, so tuned answers differ."""
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(make_tiny_model(tokenizer, seed), config)
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0.0, 2.0)
    return model


def test_batched_greedy_equals_one_at_a_time_in_order(tiny_model, tiny_tokenizer):
    assert len({len(tiny_tokenizer(p)["input_ids"]) for p in PROMPTS}) > 3  # lengths differ, so batches pad
    batched = generate(tiny_model, tiny_tokenizer, PROMPTS, GREEDY)
    assert batched == one_at_a_time(tiny_model, tiny_tokenizer, PROMPTS, GREEDY.max_new_tokens)
    assert any(batched)


def test_generate_leaves_tokenizer_and_model_mode_alone(tiny_model, tiny_tokenizer):
    tiny_tokenizer.padding_side = "right"
    tiny_model.train()
    try:
        generate(tiny_model, tiny_tokenizer, PROMPTS[:2], GREEDY)
        assert tiny_tokenizer.padding_side == "right" and tiny_model.training
    finally:
        tiny_tokenizer.padding_side = "left"


def test_plan_batches_groups_exact_lengths_then_sorted_leftovers():
    plan = plan_batches([5, 3, 5, 9, 5, 3, 7], batch_size=2)
    assert sorted(i for batch in plan for i in batch) == list(range(7))
    assert [1, 5] in plan and [0, 2] in plan  # two full exact-length buckets
    assert all(len(batch) <= 2 for batch in plan)


def test_stop_strings_cut_the_answer(tiny_model, tiny_tokenizer):
    gen = GenerationSettings(max_new_tokens=16)
    answers = generate(tiny_model, tiny_tokenizer, PROMPTS, gen)
    prompt, full = max(zip(PROMPTS, answers), key=lambda pair: len(pair[1]))
    stop = full[len(full) // 2:len(full) // 2 + 3]
    cut = generate(tiny_model, tiny_tokenizer, [prompt], gen, stop_strings=("never appears", stop))[0]
    assert cut == full[:full.index(stop)].strip() and len(cut) < len(full)
    assert cut_at_stop("  yes<|end|>more<|im_end|>", ("<|im_end|>", "<|end|>")) == "yes"
    assert cut_at_stop(" no stop ", ("###",)) == "no stop"


def test_beams_and_seeded_sampling_run(tiny_model, tiny_tokenizer):
    beams = generate(tiny_model, tiny_tokenizer, PROMPTS[:3], GenerationSettings(max_new_tokens=6, num_beams=3))
    assert len(beams) == 3 and all(isinstance(b, str) for b in beams)
    sampling = GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.5, top_p=0.95, seed=7,
                                  repetition_penalty=1.3)
    first = generate(tiny_model, tiny_tokenizer, PROMPTS[:3], sampling)
    assert generate(tiny_model, tiny_tokenizer, PROMPTS[:3], sampling) == first


def test_progress_after_each_batch_and_stop_between_batches(tiny_model, tiny_tokenizer):
    calls: list[tuple[int, int]] = []
    generate(tiny_model, tiny_tokenizer, PROMPTS, GREEDY, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (7, 7) and len(calls) == 3
    with pytest.raises(GenerationStopped) as stopped:
        generate(tiny_model, tiny_tokenizer, PROMPTS, GREEDY, should_stop=lambda: len(calls) > 3,
                 progress=lambda done, total: calls.append((done, total)))
    answered = [a for a in stopped.value.answers if a is not None]
    assert len(answered) == 3 and "after 3 of 7" in str(stopped.value)


def test_score_matches_sacrebleu():
    refs = ["the cat sat on the mat", "HELLO", "a b c d"]
    hyps = ["the cat sat on a mat", "  HELLO ", ""]
    corpus, each = score(refs, hyps)
    assert corpus.bleu == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert corpus.chrf == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert corpus.exact_match == pytest.approx(1 / 3) and corpus.n == 3
    assert each[0].bleu == pytest.approx(sacrebleu.sentence_bleu(hyps[0], [refs[0]]).score)
    assert [e.exact for e in each] == [False, True, False]
    assert each[2].bleu == 0.0 and each[2].chrf == 0.0


def test_score_edge_cases():
    assert score([], []) == (Scores(bleu=0.0, chrf=0.0, exact_match=0.0, n=0), [])
    assert score(["x y"], [""])[0].bleu == 0.0
    with pytest.raises(ValueError):
        score(["a"], [])


def test_compare_base_is_the_unadapted_model(tiny_tokenizer):
    template = get_template("alpaca")
    examples = [Example("Uppercase the word.", "APPLE", "apple"), Example("Count the words.", "2", "kite lemon"),
                Example("Reverse the letters.", "god", "dog")]
    prompts = [template.prompt(ex) for ex in examples]
    gen = GenerationSettings(max_new_tokens=8, batch_size=2)
    plain = one_at_a_time(make_tiny_model(tiny_tokenizer), tiny_tokenizer, prompts, gen.max_new_tokens)
    model = tuned_model(tiny_tokenizer)
    stages: list[str] = []
    result = compare(model, tiny_tokenizer, template, examples, gen, progress=lambda stage, d, t: stages.append(stage))
    assert [row.base for row in result.rows] == plain
    assert [row.tuned for row in result.rows] != plain
    assert stages == ["base", "base", "tuned", "tuned"]
    assert result.template == "alpaca" and result.generation["max_new_tokens"] == 8
    assert result.base.n == 3 and result.base_seconds > 0 and result.tuned_seconds > 0
    assert result.rows[0].reference == "APPLE" and result.rows[0].input == "apple"
    base, tuned = answer_both(model, tiny_tokenizer, template, "Reverse the letters.", "dog", gen)
    assert (base, tuned) == (result.rows[2].base, result.rows[2].tuned)
    with pytest.raises(DataError):
        answer_both(model, tiny_tokenizer, template, "  ", "", gen)


def sample_comparison() -> Comparison:
    """A small hand-made comparison (no model needed)."""
    rows = [
        ComparisonRow("Uppercase <b>", "dog", "DOG", "dog dog", "DOG", 0.0, 100.0, 10.0, 100.0, False, True),
        ComparisonRow("Reverse", "", "god", "go", "dgo", 20.0, 5.0, 30.0, 20.0, False, False),
    ]
    return Comparison(rows=rows, base=Scores(2.1, 15.0, 0.0, 2), tuned=Scores(71.4, 80.2, 0.5, 2),
                      generation={"max_new_tokens": 8}, base_seconds=1.5, tuned_seconds=1.2, template="alpaca")


def test_save_and_load_comparison_round_trip(runs_dir):
    run = create_run(runs_dir, StudioSettings())
    assert load_comparison(run.path) is None
    comparison = sample_comparison()
    save_comparison(run.path, comparison)
    assert load_comparison(run.path) == comparison
    first = json.loads((run.path / "comparison.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["base_response"] == "dog dog" and first["tuned_response"] == "DOG" and first["tuned_exact"]
    info = read_run(runs_dir, run.run_id)
    assert (info.bleu_base, info.bleu_tuned, info.exact_base, info.exact_tuned) == (2.1, 71.4, 0.0, 0.5)
    assert comparison.rows[0].delta_bleu == 100.0


@pytest.mark.slow
def test_batched_greedy_equals_one_at_a_time_on_the_real_model():
    from studio.modeling import load_base_model
    from studio.settings import ModelSettings

    loaded = load_base_model(ModelSettings(), for_training=False)
    template = get_template("alpaca")
    examples = [Example("Uppercase the word.", "", "river"), Example("Reverse the letters.", "", "lemon"),
                Example("Sort the words alphabetically.", "", "pear apple fig kiwi"),
                Example("Count the words.", "", "red fox runs"), Example("Give the first word.", ""),
                Example("Uppercase the words.", "", "one two three four five six")]
    prompts = [template.prompt(ex) for ex in examples]
    gen = GenerationSettings(max_new_tokens=16, batch_size=4)
    batched = generate(loaded.model, loaded.tokenizer, prompts, gen)
    assert batched == one_at_a_time(loaded.model, loaded.tokenizer, prompts, gen.max_new_tokens)
