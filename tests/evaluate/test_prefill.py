"""Reading a batch's prompts by length group: the plan, the merged cache, and answers equal to the plain batch."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import DynamicCache, Gemma3ForCausalLM, Gemma3TextConfig

from studio.data.formatting import prompt_ids
from studio.evaluate import generation, prefill
from studio.evaluate.generation import generate_answers
from studio.evaluate.prefill import (
    PAYS,
    SLACK,
    Plan,
    batch_plan,
    cache_keyword,
    can_prefill,
    layout,
    length_groups,
    prefilled_cache,
    reading_plan,
    shared_prefix,
    tokens_read,
    whole,
)
from studio.settings import GenerationSettings
from tests.builders import one_at_a_time, tuned_model
from tests.tiny import WORDS

# Prompts of 3 to about 60 tokens: one padded batch would read the longest in every row.
PROMPTS = [f"### Instruction:\n{' '.join(WORDS[:n])}\n\n### Response:\n" for n in (1, 2, 3, 5, 8, 12, 16)] + [
    "Count the words.", "What is the capital of France?", " ".join(WORDS[:16] * 2)]
# The prompt-only baseline's shape: the same shots in front of prompts of unlike lengths.
# (Within the tiny model's 64-token sliding window.)
SHOTS = "".join(f"### Instruction:\n{' '.join(WORDS[i:i + 5])}\n\n### Response:\n{WORDS[i]}\n\n" for i in (0, 6))
PREFIXED = [SHOTS + p for p in PROMPTS[:6]]
GREEDY = GenerationSettings(max_new_tokens=10, batch_size=16)


def hybrid_model(tokenizer, sliding_window: int = 128) -> Gemma3ForCausalLM:
    """A 2-layer Gemma 3 with one sliding-window layer and one full layer, as the real model mixes them."""
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
        sliding_window=sliding_window, layer_types=["sliding_attention", "full_attention"],
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True)
    return Gemma3ForCausalLM(config).eval()


def rows_of(tokenizer, prompts: list[str]) -> list[list[int]]:
    return [prompt_ids(tokenizer, p) for p in prompts]


def of_lengths(lengths: list[int]) -> list[list[int]]:
    """Rows of these lengths that share no first token."""
    return [[i + 1] + [7] * (n - 1) for i, n in enumerate(lengths)]


def plain_plan(model, rows, beams):
    return whole([len(r) for r in rows])


def test_length_groups_cover_every_row_once_each_within_the_slack():
    lengths = [15, 204, 19, 23, 100, 101, 16, 60, 2, 3]
    groups = length_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(max(lengths[i] for i in g) <= SLACK * min(lengths[i] for i in g) for g in groups)
    firsts = [lengths[g[0]] for g in groups]
    assert firsts == sorted(firsts) and len(groups) < len(lengths)
    assert length_groups([5, 5, 5]) == [[0, 1, 2]] and length_groups([]) == []


def test_the_plan_groups_only_where_that_reads_far_fewer_tokens():
    spread = of_lengths([15, 19, 23, 29, 40, 60, 90, 140, 204])
    plan = reading_plan(spread)
    assert len(plan.groups) > 1 and plan.prefix == 0
    assert tokens_read(whole([len(r) for r in spread])) == 9 * 204
    assert tokens_read(plan) * PAYS <= 9 * 204
    assert reading_plan(of_lengths([40, 42, 45, 48])).plain  # like lengths: the one plain pass
    assert reading_plan(of_lengths([1, 50, 200])).plain  # a one-token prompt has nothing to read before its last
    assert reading_plan([]).plain


def test_the_shared_prefix_leaves_each_row_its_last_token():
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3], [1, 2, 5, 6]]) == 2
    assert shared_prefix([[1, 2, 3], [1, 2, 3]]) == 2  # the last token is read by `generate`, row by row
    assert shared_prefix([[1, 2], [3, 2]]) == 0 and shared_prefix([]) == 0


def test_a_long_shared_prefix_is_read_once():
    shots = list(range(100, 180))  # 80 tokens of shots in front of every prompt, as the baseline reads
    rows = [shots + [1 + i] * n for i, n in enumerate([15, 17, 20, 22, 16, 18])]
    plan = reading_plan(rows)
    assert plan.prefix == 80 and plan.groups == [[0, 1, 2, 3, 4, 5]]  # the rest is alike in length: one group
    assert tokens_read(plan) == 80 + 6 * 22 and tokens_read(whole([len(r) for r in rows])) == 6 * 102
    spread = [shots + [1 + i] * n for i, n in enumerate([2, 3, 40, 50, 90])]
    assert reading_plan(spread) == Plan([[0], [1], [2, 3], [4]], 80)  # the rest by length too
    short = [[5, 6] + [1 + i] * n for i, n in enumerate([20, 21, 22, 23])]
    assert reading_plan(short).plain  # two shared tokens save too little: the word tasks' Compare stays plain


def test_the_layout_puts_each_row_after_its_padding_the_prefix_and_its_groups_hole():
    rows = [[9, 8, 1], [9, 8, 2, 2, 2], [9, 8, 3, 3, 3, 3, 3, 3, 3, 3]]
    plan = Plan([[0, 1], [2]], prefix=2, sizes=[3, 5, 10])
    batch = layout(rows, plan, 0, torch.device("cpu"))
    assert batch["input_ids"].tolist() == [[0, 0, 0, 0, 0, 9, 8, 9, 9, 1],  # a hole of 2 in a group of span 3
                                           [0, 0, 0, 0, 0, 9, 8, 2, 2, 2],
                                           [9, 8, 3, 3, 3, 3, 3, 3, 3, 3]]
    assert batch["attention_mask"].tolist() == [[0, 0, 0, 0, 0, 1, 1, 0, 0, 1], [0] * 5 + [1] * 5, [1] * 10]
    plain = layout(rows, whole([3, 5, 10]), 0, torch.device("cpu"))
    assert plain["input_ids"][0].tolist() == [0] * 7 + [9, 8, 1]  # no prefix: left padding only


def test_which_models_and_settings_can_go_on_from_a_merged_cache(tiny_tokenizer):
    model = hybrid_model(tiny_tokenizer, sliding_window=128)
    assert can_prefill(model, 128, num_beams=1)
    assert not can_prefill(model, 129, num_beams=1)  # wider than the window: groups would drop different positions
    assert not can_prefill(model, 64, num_beams=2)  # beams copy the cache row by row
    model.generation_config.cache_implementation = "static"
    assert not can_prefill(model, 64, num_beams=1)
    spread = of_lengths([3, 40, 120])
    assert batch_plan(model, spread, 1).plain  # the static cache: one plain pass
    assert len(batch_plan(hybrid_model(tiny_tokenizer), spread, 1).groups) == 3


@pytest.mark.parametrize("prompts", [PROMPTS, PREFIXED], ids=["unlike lengths", "shared prefix"])
def test_the_merged_cache_holds_what_one_pass_caches_at_every_real_position(tiny_tokenizer, prompts):
    model = hybrid_model(tiny_tokenizer)
    rows = rows_of(tiny_tokenizer, prompts)
    plan = reading_plan(rows)
    assert len(plan.groups) > 1 if prompts is PROMPTS else plan.prefix > 20
    batch = layout(rows, plan, tiny_tokenizer.pad_token_id, torch.device("cpu"))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.inference_mode():
        merged = prefilled_cache(model, ids, mask, plan)
        plain = DynamicCache(config=model.config)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)[:, :-1]
        model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions, use_cache=True,
              **{cache_keyword(model): plain})
    real = mask[:, :-1].bool()
    left = torch.arange(ids.shape[1] - 1) < mask.argmax(dim=1, keepdim=True)  # before each row's first real token
    assert merged.get_seq_length() == plain.get_seq_length() == ids.shape[1] - 1
    for ours, theirs in zip(merged.layers, plain.layers):
        for name in ("keys", "values"):
            a, b = getattr(ours, name), getattr(theirs, name)
            assert a.shape == b.shape
            assert torch.allclose(a.transpose(1, 2)[real], b.transpose(1, 2)[real], atol=1e-5)
            assert not a.transpose(1, 2)[left].any()  # left padding: zeros (a group's hole is read, and masked)


@pytest.mark.parametrize("prompts", [PROMPTS, PREFIXED], ids=["unlike lengths", "shared prefix"])
@pytest.mark.parametrize("adapter", [False, True])
def test_planned_answers_equal_the_plain_batch_and_one_at_a_time(tiny_tokenizer, monkeypatch, adapter, prompts):
    model = tuned_model(tiny_tokenizer) if adapter else hybrid_model(tiny_tokenizer)
    assert not reading_plan(rows_of(tiny_tokenizer, prompts)).plain
    calls = []
    real = prefill.prefilled_cache
    monkeypatch.setattr(generation, "prefilled_cache", lambda *a: calls.append(a) or real(*a))
    planned = generate_answers(model, tiny_tokenizer, prompts, GREEDY)
    assert len(calls) == 1  # one batch, read by plan
    monkeypatch.setattr(generation, "batch_plan", plain_plan)
    assert planned == generate_answers(model, tiny_tokenizer, prompts, GREEDY)
    assert [a.text for a in planned] == one_at_a_time(model, tiny_tokenizer, prompts, GREEDY.max_new_tokens)
    assert len({a.text for a in planned}) > 1


@pytest.mark.parametrize("prompts", [PROMPTS, PREFIXED], ids=["unlike lengths", "shared prefix"])
def test_sampling_and_the_repetition_penalty_read_by_plan_too(tiny_tokenizer, monkeypatch, prompts):
    model = hybrid_model(tiny_tokenizer)
    settings = replace(GREEDY, do_sample=True, temperature=0.9, top_p=0.95, seed=3, repetition_penalty=1.3)
    planned = generate_answers(model, tiny_tokenizer, prompts, settings)
    monkeypatch.setattr(generation, "batch_plan", plain_plan)
    assert planned == generate_answers(model, tiny_tokenizer, prompts, settings)


def test_beams_read_the_plain_batch(tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(generation, "prefilled_cache", lambda *a: pytest.fail("beams copy the cache row by row"))
    beams = replace(GREEDY, num_beams=2)
    assert len(generate_answers(hybrid_model(tiny_tokenizer), tiny_tokenizer, PROMPTS, beams)) == len(PROMPTS)


def test_the_cache_keyword_is_what_the_model_inside_a_peft_wrapper_takes(tiny_tokenizer):
    import inspect

    model = tuned_model(tiny_tokenizer)
    keyword = cache_keyword(model)
    assert keyword in inspect.signature(model.get_base_model().forward).parameters


@pytest.mark.slow
def test_grouped_answers_equal_the_plain_batch_on_the_real_model(embedded_base, monkeypatch):
    from studio.data.templates import get_template
    from studio.examples import Example

    loaded = embedded_base  # tests/conftest.py: the real model, loaded once for the tests that only read it
    passage = ("The river rises in the hills, runs past three villages and a mill, and reaches the sea after a "
               "long, slow bend through the marshes where the herons nest in spring. ")
    examples = [Example("Uppercase the word.", "", "river"), Example("Name a colour.", ""),
                Example("Summarise the passage in one sentence.", "", passage),
                Example("List the places the river passes.", "", passage * 3),
                Example("Give the passage a title.", "", passage * 2)]
    prompts = [get_template("alpaca").prompt(ex) for ex in examples]
    assert len(reading_plan(rows_of(loaded.tokenizer, prompts)).groups) > 2
    gen = GenerationSettings(max_new_tokens=16)
    grouped = generate_answers(loaded.model, loaded.tokenizer, prompts, gen)
    monkeypatch.setattr(generation, "batch_plan", plain_plan)
    assert grouped == generate_answers(loaded.model, loaded.tokenizer, prompts, gen)
    assert [a.text for a in grouped] == one_at_a_time(loaded.model, loaded.tokenizer, prompts, gen.max_new_tokens)
