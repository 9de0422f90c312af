"""The prompt-only baseline: k training examples before each held-out prompt, base model (studio.evaluate.baseline)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from studio.data.formatting import prompt_ids
from studio.data.templates import get_template
from studio.evaluate.baseline import (
    MAX_CONTEXT,
    answer_with_shots,
    base_decoding_rate,
    choose_k,
    context_limit,
    few_shot_prompt,
    pick_shots,
    prompt_tokens_read,
    run_baseline,
    shot_text,
)
from studio.evaluate.before_after import compare
from studio.evaluate.generation import GenerationStopped
from studio.examples import Example
from studio.settings import GenerationSettings
from tests.builders import tuned_model
from tests.tiny import WORDS

TRAIN = [Example("Uppercase the word.", w.upper(), w) for w in WORDS[:12]] + \
        [Example("Reverse the letters.", w[::-1], w) for w in WORDS[12:]]
HELD_OUT = [Example("Uppercase the word.", "APPLE", "apple"), Example("Count the words.", "2", "kite lemon"),
            Example("Reverse the letters.", "god", "dog")]


def test_a_few_shot_prompt_is_the_shots_in_template_form_then_the_prompt(tiny_tokenizer):
    template = get_template("instruction_output")
    prompt = few_shot_prompt(template, TRAIN[:2], HELD_OUT[0])
    first, second = (template.render(ex) for ex in TRAIN[:2])
    assert prompt == (f"{first.prompt}{first.completion}\n\n{second.prompt}{second.completion}\n\n"
                      f"{template.prompt(HELD_OUT[0])}")
    assert few_shot_prompt(template, [], HELD_OUT[0]) == template.prompt(HELD_OUT[0])
    # Chat turns follow each other on the next line; a BOS the template writes as text stays only at the start.
    chatml = get_template("chatml")
    assert shot_text(chatml, TRAIN[0]).endswith("<|im_end|>\n")
    with_bos = get_template("custom", "<bos>{instruction}\n{input}\n{output}")
    text = few_shot_prompt(with_bos, TRAIN[:3], HELD_OUT[0], bos="<bos>")
    assert text.startswith("<bos>") and text.count("<bos>") == 1
    ids = prompt_ids(tiny_tokenizer, text)
    assert ids.count(tiny_tokenizer.bos_token_id) == 1 and ids[0] == tiny_tokenizer.bos_token_id


def test_shots_are_a_deterministic_sample_of_short_training_examples(tiny_tokenizer):
    template = get_template("alpaca")
    shots = pick_shots(tiny_tokenizer, template, TRAIN, 3)
    assert len(shots) == 3 == len(set(shots)) and shots == pick_shots(tiny_tokenizer, template, TRAIN, 3)
    lengths = sorted(len(prompt_ids(tiny_tokenizer, shot_text(template, ex))) for ex in TRAIN)
    median = lengths[(len(lengths) - 1) // 2]
    assert all(len(prompt_ids(tiny_tokenizer, shot_text(template, TRAIN[i]))) <= median for i in shots)
    assert pick_shots(tiny_tokenizer, template, [], 3) == []


def test_k_is_the_most_shots_that_fit_the_context_and_the_budget():
    longest = [20, 45, 70, 95]  # the longest prompt with 0..3 shots in front
    assert choose_k(longest, 12, 256, 48, 48)[0] == 3
    k, reason, seconds = choose_k(longest, 12, 90, 48, 48)
    assert (k, seconds) == (2, None) and reason.startswith("2-shot: 2 training examples before each prompt")
    assert "3 would not fit the 90-token context" in reason
    k, reason, _ = choose_k(longest, 12, 50, 48, 48)
    assert k == 0 and reason.startswith("Prompting alone was not measured: not even one training example fits")
    # One batch of 48 decoding 12 steps at 1 step/s, and 48 x longest prompt tokens at 480 tokens/s.
    k, reason, seconds = choose_k(longest, 12, 256, 48, 48, budget_seconds=20, steps_per_second=1.0,
                                  prefill_per_second=480.0)
    assert (k, seconds) == (2, pytest.approx(12 + 7.0))
    assert "3 would take about 22 s, over the 20-second budget" in reason
    assert choose_k(longest, 12, 256, 48, 48, budget_seconds=5, steps_per_second=1.0, prefill_per_second=480.0)[0] == 0
    assert choose_k([20], 12, 256, 48, 48)[1].endswith("there are no training examples to show.")
    # The shots read once for the whole batch (`reading`): 3 shots fit the budget the plain batch would pass.
    k, _, seconds = choose_k(longest, 12, 256, 48, 48, budget_seconds=20, steps_per_second=1.0,
                             prefill_per_second=480.0, reading=[960, 985, 1010, 1035])
    assert (k, seconds) == (3, pytest.approx(12 + 1035 / 480))


def test_the_estimate_counts_the_shots_once_where_the_batch_reads_them_once(tiny_tokenizer):
    from tests.evaluate.test_prefill import hybrid_model

    model, template = hybrid_model(tiny_tokenizer), get_template("instruction_output")
    shots = TRAIN[:2]
    rows = [prompt_ids(tiny_tokenizer, few_shot_prompt(template, shots, ex)) for ex in HELD_OUT]
    shared = 0
    while all(r[shared] == rows[0][shared] for r in rows):
        shared += 1
    assert shared > 10
    read = prompt_tokens_read(model, rows, batch_size=3)
    assert read == shared + 3 * (max(map(len, rows)) - shared)  # the shots once, the rest padded to its longest
    assert prompt_tokens_read(model, rows, batch_size=3, num_beams=2) == 3 * max(map(len, rows))  # beams: plain


def test_k_shrinks_to_fit_the_models_context_and_the_prompts_hold_the_shots(tiny_tokenizer, tiny_model):
    template = get_template("instruction_output")
    gen = GenerationSettings(max_new_tokens=4, batch_size=3, baseline_shots=3)
    full = run_baseline(tiny_model, tiny_tokenizer, template, TRAIN, HELD_OUT, gen, timed=False)
    assert full.choice.k == 3 and full.choice.label == "3-shot" and len(full.answers) == 3
    assert full.choice.reason.startswith("3-shot: 3 training examples before each prompt")
    assert full.choice.context_limit == tiny_model.config.max_position_embeddings  # the model's, not data.max_length
    shots = [TRAIN[i] for i in full.choice.shots]
    longest = max(len(prompt_ids(tiny_tokenizer, few_shot_prompt(template, shots[:2], ex))) for ex in HELD_OUT)
    tiny_model.config.max_position_embeddings = longest + 4  # a model with a short context (a fresh model per test)
    short = run_baseline(tiny_model, tiny_tokenizer, template, TRAIN, HELD_OUT, gen, timed=False)
    assert short.choice.k == 2 and short.choice.shots == full.choice.shots[:2]
    assert short.choice.context_limit == longest + 4 and "3 would not fit" in short.choice.reason
    off = run_baseline(tiny_model, tiny_tokenizer, template, TRAIN, HELD_OUT, replace(gen, baseline_shots=0))
    assert off.choice.k == 0 and off.answers == [] and "turned off" in off.choice.reason


def test_the_context_is_the_models_own_capped_and_never_the_training_length(tiny_tokenizer, tiny_model):
    from types import SimpleNamespace

    assert context_limit(tiny_model) == tiny_model.config.max_position_embeddings
    assert context_limit(SimpleNamespace(config=SimpleNamespace(max_position_embeddings=32_768))) == MAX_CONTEXT
    assert context_limit(SimpleNamespace()) == MAX_CONTEXT  # no recorded context: the cap
    assert context_limit(tiny_model, cap=100) == 100
    # Long training answers: each shot alone passes the 256 tokens a run trains on by default, yet shots fit.
    long_train = [Example("Explain the word.", " ".join([w] * 200), w) for w in WORDS[:6]]
    assert min(len(prompt_ids(tiny_tokenizer, shot_text(get_template("alpaca"), ex))) for ex in long_train) > 256
    tiny_model.config.max_position_embeddings = 4096  # a larger model context: the cap applies
    gen = GenerationSettings(max_new_tokens=4, batch_size=3, baseline_shots=2)
    got = run_baseline(tiny_model, tiny_tokenizer, get_template("alpaca"), long_train, HELD_OUT, gen, timed=False)
    assert got.choice.k == 2 and got.choice.context_limit == MAX_CONTEXT
    assert f"within the {MAX_CONTEXT}-token context" in got.choice.reason


def test_with_no_shots_the_baseline_answers_are_the_base_answers(tiny_tokenizer):
    model, template = tuned_model(tiny_tokenizer), get_template("alpaca")
    gen = GenerationSettings(max_new_tokens=8, batch_size=2)
    compared = compare(model, tiny_tokenizer, template, HELD_OUT, gen)
    answers = answer_with_shots(model, tiny_tokenizer, template, [], HELD_OUT, gen)
    assert [a.text for a in answers] == [row.base for row in compared.rows]
    assert [a.raw for a in answers] == [row.base_raw for row in compared.rows]


def test_the_baseline_is_deterministic_uses_the_base_model_and_stops_between_batches(tiny_tokenizer):
    model, template = tuned_model(tiny_tokenizer), get_template("alpaca")
    gen = GenerationSettings(max_new_tokens=6, batch_size=2, baseline_shots=2)
    seen: list[tuple[str, int, int]] = []
    first = run_baseline(model, tiny_tokenizer, template, TRAIN, HELD_OUT, gen,
                         progress=lambda *a: seen.append(a), timed=False)
    again = run_baseline(model, tiny_tokenizer, template, TRAIN, HELD_OUT, gen, timed=False)
    assert first.choice == again.choice and [a.text for a in first.answers] == [a.text for a in again.answers]
    assert seen[-1] == ("baseline (2-shot)", 3, 3) and first.seconds > 0
    shots = [TRAIN[i] for i in first.choice.shots]
    with model.disable_adapter():
        plain = answer_with_shots(model, tiny_tokenizer, template, shots, HELD_OUT, gen)
    assert [a.text for a in plain] == [a.text for a in first.answers]
    with pytest.raises(GenerationStopped) as stopped:
        calls = iter([False, True])
        answer_with_shots(model, tiny_tokenizer, template, shots, HELD_OUT, gen, should_stop=lambda: next(calls))
    assert sum(a is not None for a in stopped.value.answers) == 2


def test_a_timed_baseline_measures_the_rates_and_respects_its_budget(tiny_tokenizer, tiny_model):
    template = get_template("alpaca")
    gen = GenerationSettings(max_new_tokens=4, batch_size=3, baseline_shots=2, baseline_budget_seconds=3600)
    timed = run_baseline(tiny_model, tiny_tokenizer, template, TRAIN, HELD_OUT, gen)
    assert timed.choice.k == 2 and timed.choice.estimated_seconds is not None and timed.choice.estimated_seconds > 0
    tight = run_baseline(tiny_model, tiny_tokenizer, template, TRAIN, HELD_OUT, gen, steps_per_second=1e-3)
    assert tight.choice.k == 0 and "over the 3600-second budget" in tight.choice.reason and tight.answers == []


def test_the_base_pass_gives_the_decoding_rate_without_a_timing_run(tiny_tokenizer):
    model, template = tuned_model(tiny_tokenizer), get_template("alpaca")
    gen = GenerationSettings(max_new_tokens=8, batch_size=2)
    compared = compare(model, tiny_tokenizer, template, HELD_OUT, gen)
    steps = compared.decoding_steps["base"]
    # Two batches (2 + 1 prompts), each decoding until its longest answer ended: at least one step, at most the limit.
    assert 2 <= steps <= 2 * gen.max_new_tokens and 2 <= compared.decoding_steps["tuned"] <= 2 * gen.max_new_tokens
    assert base_decoding_rate(compared) == pytest.approx(steps / compared.base_seconds)
    assert base_decoding_rate(replace(compared, decoding_steps={})) is None  # nothing recorded: measure it instead
