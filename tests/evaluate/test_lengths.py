"""Answers sized to the data (studio.evaluate.lengths): the chosen max_new_tokens, its reason, answers cut by it."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from studio.data.formatting import Features
from studio.data.templates import get_template
from studio.evaluate.lengths import (
    AnswerLength,
    answer_tokens,
    budget_cap,
    count_cut,
    cut_label,
    fit_answer_length,
    loop_penalty,
    percentile,
    ran_into_limit,
    recorded_cuts,
    reference_lengths,
    repeats_itself,
    set_by_hand,
    sized,
)
from studio.examples import Example
from studio.settings import GenerationSettings

FLOOR = GenerationSettings().max_new_tokens


def test_the_percentile_is_a_nearest_rank_one():
    assert percentile([5]) == 5
    assert percentile(list(range(1, 101))) == 95
    assert percentile([104] * 46 + [200, 300]) == 104  # the 46th of 48
    assert percentile([3, 1, 2], 50) == 2


def test_short_answers_keep_the_setting():
    # The built-in word tasks: at most 9 tokens + EOS against the default 12.
    chosen = fit_answer_length([3, 5, 10, 7], FLOOR)
    assert chosen.max_new_tokens == FLOOR and chosen.fitted is None and chosen.longer == 0
    assert chosen.reason == "answers up to 12 tokens: all 4 references fit (the longest is 10 tokens with its " \
                            "end-of-text token)."
    none = fit_answer_length([], 36)
    assert none.max_new_tokens == 36 and "no held-out references" in none.reason


def test_long_answers_get_the_percentile_plus_a_margin_rounded_up():
    lengths = [104] * 46 + [200, 300]
    chosen = fit_answer_length(lengths, FLOOR)
    assert chosen.max_new_tokens == 128 and chosen.fitted == 128 and not chosen.capped  # 104 * 1.2 = 124.8 -> 128
    assert chosen.reason == ("answers up to 128 tokens: the 95th percentile of the 48 references is 104 tokens, "
                             "plus 20%.")
    assert chosen.longer == 2 and chosen.references == 48
    # Never below the setting, even when most answers are shorter.
    outliers = fit_answer_length([4] * 20 + [200], 64)
    assert outliers.max_new_tokens == 64 and outliers.longer == 1
    assert outliers.reason == ("answers up to 64 tokens: the 95th percentile of the 21 references is 4 tokens, "
                               "plus 20% (8) is within the 64-token setting.")
    assert fit_answer_length([5000] * 10).max_new_tokens == 4096  # GenerationSettings' own bound


def test_the_time_budget_caps_it_but_never_below_the_setting():
    # 48 prompts in one batch, 2 passes (base + tuned), 300 s at 0.2 steps/s: 30 new tokens per answer at most.
    assert budget_cap(300, 0.2, passes=2, n_prompts=48, batch_size=48) == 30
    assert budget_cap(300, 0.2, passes=3, n_prompts=48, batch_size=16) == 6  # 3 batches per pass, 3 passes
    lengths = [104] * 48
    roomy = fit_answer_length(lengths, FLOOR, budget_seconds=300, steps_per_second=4.0)
    assert roomy.max_new_tokens == 128 and roomy.cap == 600 and not roomy.capped
    capped = fit_answer_length(lengths, FLOOR, budget_seconds=300, steps_per_second=0.2)
    assert capped.max_new_tokens == 30 and capped.capped and capped.longer == 48
    assert capped.reason == ("answers up to 30 tokens: the 95th percentile of the 48 references is 104 tokens, "
                             "plus 20% (128); capped by the 5-minute budget for 2 passes at 0.2 decoding steps/s.")
    baseline = fit_answer_length(lengths, FLOOR, passes=3, budget_seconds=300, steps_per_second=0.2)
    assert baseline.max_new_tokens == 20 and "for 3 passes" in baseline.reason
    # Each pass first reads its prompts for 30 s: 240 s of the 300 are left for decoding.
    assert budget_cap(300, 0.2, passes=2, n_prompts=48, batch_size=48, prefill_seconds=30) == 24
    assert budget_cap(300, 0.2, passes=2, n_prompts=48, batch_size=48, prefill_seconds=200) == 0
    reading = fit_answer_length(lengths, FLOOR, budget_seconds=300, steps_per_second=0.2, prefill_seconds=30)
    assert reading.max_new_tokens == 24 and reading.reason.endswith(
        "capped by the 5-minute budget for 2 passes at 0.2 decoding steps/s, after 30 s a pass reading the prompts.")
    tight = fit_answer_length(lengths, FLOOR, budget_seconds=30, steps_per_second=0.2)
    assert tight.max_new_tokens == FLOOR and tight.cap == 3
    assert tight.reason.endswith("the 30-second budget for 2 passes at 0.2 decoding steps/s allows only 3, so the "
                                 "12-token setting stays.")


def test_reference_lengths_are_the_trained_answer_tokens(tiny_tokenizer):
    examples = [Example("Uppercase the word.", "APPLE", "apple"), Example("Say it.", "Paris is the capital. " * 60)]
    lengths = reference_lengths(tiny_tokenizer, get_template("alpaca"), examples)
    assert lengths == [len(tiny_tokenizer(e.output, add_special_tokens=False)["input_ids"]) + 1 for e in examples]
    assert lengths[1] > 256  # untruncated, whatever the training max_length


def test_answer_tokens_are_the_final_answer_only():
    # A chat's earlier assistant turn is trained too, but the masked user turn in between ends the final answer.
    features = Features(input_ids=list(range(10)), completion_mask=[0, 0, 1, 1, 0, 0, 0, 1, 1, 1], n_prompt=5,
                        n_completion=5, truncated=False)
    assert answer_tokens(features) == 3


@pytest.mark.parametrize(("n", "ended_by", "cut"), [
    (12, None, True),  # used every token, nothing ended it
    (12, "eos", False),  # EOS as the very last token
    (12, "stop", False),  # a stop string ended it; the batch ran on to the limit for other rows
    (5, "eos", False),
    (5, None, False),  # ended early by a user's stop, not by the limit
])
def test_an_answer_ran_into_the_limit_only_when_nothing_ended_it(n, ended_by, cut):
    assert ran_into_limit(n, 12, ended_by) is cut


def test_counting_cut_answers():
    counted = count_cut([(12, None), (12, "stop"), (3, "eos"), (12, None)], 12)
    assert (counted.cut, counted.total, counted.limit) == (2, 4, 12)
    assert counted.sentence("tuned") == "2 of 4 tuned answers were cut at 12 tokens."
    assert count_cut([(128, None)], 128).sentence("base") == "1 of 1 base answers was cut at 128 tokens."
    assert counted.label == cut_label(12) == "cut at 12 tokens"
    assert isinstance(fit_answer_length([1]), AnswerLength)


# Ends of answers Gemma 3 270M wrote (base and tuned on AlpacaEval's prompts) that ran into a 232-token limit.
LOOPS = [
    "I'm a proud woman,\nI'm a proud woman,\nI'm a proud woman,\nI'm a proud woman,\nI'm a proud woman,\n"
    "I'm a proud woman,\nI'm a proud woman,\nI'm a proud woman,\nI'm a proud woman,\nI'm a proud woman,\nI",
    "I'm sorry, I'm sorry. I'm sorry, I'm sorry. I'm sorry, I'm sorry. I'm sorry, I'm sorry. I'm sorry, I'm sorry. "
    "I'm sorry, I'm sorry",
    "1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1",
    # a long unit written again and again: a near loop, its details shuffled
    "You can also provide a safe place for the rat to sleep and play with toys. You can also provide a safe place "
    "for the rat to explore and explore. You can also provide a safe place for the rat to play with toys and explore. "
    "You can also provide a safe place for the rat to sleep and play with toys. You can",
    # a numbered list that writes one item again and again
    "Here are some salads:\n1. Kale + almond butter + apple cider vinegar\n2. Kale + almond butter + apple cider "
    "vinegar + agave nectar\n3. Kale + almond butter + apple cider vinegar + agave nectar + tamari\n4. Kale + almond "
    "butter + apple cider vinegar + agave nectar + tamari\n5. Kale + almond butter + apple cider vinegar + agave "
    "nectar + tamari\n6. Kale + almond butter + apple cider vinegar + agave nectar + tamari\n7. Kale",
    "I will be responsible for:\n- supervising young children\n- preparing meals and snacks\n- assisting with "
    "homework\n- engaging in playtime activities\n\nI will be responsible for:\n- supervising young children\n- "
    "preparing meals and snacks\n- assisting with homework\n- engaging in playtime activities\n\nI will be "
    "responsible for:\n- supervising young children\n- preparing meals",
]


@pytest.mark.parametrize("text", LOOPS)
def test_an_answer_stuck_in_a_loop_is_told_apart(text):
    assert repeats_itself(text)


def test_written_answers_are_not_taken_for_loops():
    # AlpacaEval's 805 reference answers, written by people and GPT-4: only a regular expression that repeats one
    # group four times reads as a loop.
    real = Path(__file__).resolve().parents[1] / "data/real/alpaca_eval_outputs.json.gz"
    flagged = [row["output"] for row in json.loads(gzip.decompress(real.read_bytes())) if repeats_itself(row["output"])]
    assert len(flagged) <= 1 and all("25[0-5]" in text for text in flagged)
    # HumanEval's 164 programs, prompt + canonical solution: code repeats keywords, not whole lines.
    programs = Path(__file__).resolve().parents[1] / "data/messy/HumanEval.jsonl.gz"
    rows = [json.loads(line) for line in gzip.decompress(programs.read_bytes()).decode().splitlines() if line]
    assert len(rows) == 164 and not any(repeats_itself(r["prompt"] + r["canonical_solution"]) for r in rows)
    assert not repeats_itself("very very very very good")  # too short to say
    counting = "\n".join(f"{n}. The {w} satellite was launched in {1990 + 3 * n}." for n, w in enumerate(
        ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"], 1))
    assert not repeats_itself(counting)  # a list that counts on is formulaic, not a verbatim loop
    assert not repeats_itself("")


def test_cut_answers_stuck_in_a_loop_are_counted_apart():
    texts = [LOOPS[0], "The capital of France is Paris, a city on the Seine known for", "fine", LOOPS[1]]
    counted = count_cut([(12, None), (12, None), (3, "eos"), (12, None)], 12, texts)
    assert (counted.cut, counted.looped) == (3, 2)
    assert counted.sentence("tuned") == "3 of 4 tuned answers were cut at 12 tokens, 2 of them stuck in a loop."
    assert count_cut([(12, None)], 12, [LOOPS[2]]).sentence("base") == (
        "1 of 1 base answers was cut at 12 tokens, stuck in a loop.")
    assert count_cut([(12, None)] * 2, 12, LOOPS[:2]).sentence("base").endswith("all of them stuck in a loop.")
    assert cut_label(12, looped=True) == "cut at 12 tokens, stuck in a loop"
    # A looping answer that stopped on its own is not cut, so not counted.
    assert count_cut([(5, "eos")], 12, [LOOPS[0]]).looped == 0


def test_recorded_cuts_need_every_flag_and_the_limit():
    assert recorded_cuts([True, False], [LOOPS[0], "x"], 12) == count_cut([(12, None), (3, "eos")], 12, [LOOPS[0], "x"])
    assert recorded_cuts([True, None], ["", ""], 12) is None
    assert recorded_cuts([True], [""], None) is None
    assert recorded_cuts([], [], 12) is None


@pytest.mark.slow
def test_the_word_tasks_keep_their_short_answers_with_the_real_tokenizer():
    from studio.data.samples import word_tasks
    from studio.model.loading import load_tokenizer
    from studio.settings import ModelSettings

    _, test = word_tasks.build()
    examples = [Example(r["instruction"], r["output"], r["input"]) for r in test]
    lengths = reference_lengths(load_tokenizer(ModelSettings()), get_template("instruction_output"), examples)
    assert max(lengths) <= FLOOR and fit_answer_length(lengths, FLOOR).max_new_tokens == FLOOR


def test_the_loop_guard_penalises_repeats_only_in_long_answers():
    gen = GenerationSettings()
    assert loop_penalty(gen, 12) == 1.0 and loop_penalty(gen, 64) == 1.0  # no room to loop: the word tasks
    assert loop_penalty(gen, 65) == 1.15 and loop_penalty(gen, 512) == 1.15
    assert loop_penalty(GenerationSettings(repetition_penalty_auto=False), 512) == 1.0  # off: exactly the setting
    assert loop_penalty(GenerationSettings(repetition_penalty=1.3), 512) == 1.3  # the setting is the least it gets
    assert loop_penalty(GenerationSettings(repetition_penalty=1.3), 12) == 1.3


def test_sized_settings_carry_the_length_and_the_loop_guard_with_one_reason():
    gen = GenerationSettings(max_new_tokens=12, temperature=0.5)
    long = fit_answer_length([100] * 20, 12)
    answering, why = sized(gen, long)
    assert answering.max_new_tokens == 120 and answering.repetition_penalty == 1.15 and answering.temperature == 0.5
    assert why == (f"{long.reason[:-1]}; a repetition penalty of 1.15 keeps answers over 64 tokens out of loops "
                   "(the loop guard).")
    short = fit_answer_length([3, 5, 10], 12)
    assert sized(gen, short) == (gen, short.reason)  # the word tasks: nothing changes, nothing said
    assert sized(gen, set_by_hand(200))[0].repetition_penalty == 1.15  # the guard follows the length, however set
    off = GenerationSettings(repetition_penalty_auto=False)
    assert sized(off, long)[0].repetition_penalty == 1.0 and sized(off, long)[1] == long.reason


def test_the_settings_help_states_the_loop_guard_rule():
    from studio.evaluate.lengths import LONG_ANSWER_TOKENS, LOOP_PENALTY
    from studio.settings import field_meta

    help = field_meta("generation", "repetition_penalty_auto")["help"]
    assert f"more than {LONG_ANSWER_TOKENS} tokens" in help and f"of at least {LOOP_PENALTY:g}" in help
