"""Generation, scoring and the before/after comparison on the tiny in-process model."""
from __future__ import annotations

from dataclasses import replace

import pytest

from studio.data.templates import get_template
from studio.evaluate.generation import (
    GenerationStopped,
    StopRule,
    cut_answer,
    cut_at_stop,
    find_stop,
    generate,
    generate_answers,
    plan_batches,
    stop_rule,
)
from studio.evaluate.lengths import ran_into_limit
from studio.examples import Example
from studio.settings import GenerationSettings
from tests.builders import ForcedTokenModel, one_at_a_time

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


def test_batched_greedy_equals_one_at_a_time_in_order(tiny_model, tiny_tokenizer):
    assert len({len(tiny_tokenizer(p)["input_ids"]) for p in PROMPTS}) > 3  # lengths differ, so batches pad
    batched = generate(tiny_model, tiny_tokenizer, PROMPTS, GREEDY)
    assert batched == one_at_a_time(tiny_model, tiny_tokenizer, PROMPTS, GREEDY.max_new_tokens)
    assert any(batched)


def test_the_repetition_penalty_reads_each_rows_own_tokens_not_its_padding(tiny_model):
    from tests.tiny import make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token  # padding with EOS: transformers' own penalty would penalise ending
    penalised = replace(GREEDY, repetition_penalty=1.3)
    batched = generate(tiny_model, tokenizer, PROMPTS, penalised)
    assert batched == one_at_a_time(tiny_model, tokenizer, PROMPTS, GREEDY.max_new_tokens, repetition_penalty=1.3)
    assert batched != generate(tiny_model, tokenizer, PROMPTS, GREEDY)  # the penalty does change answers


def test_the_penalty_leaves_the_pad_id_alone_and_penalises_the_rows_tokens_both_ways():
    import torch

    from studio.evaluate.generation import _RowRepetitionPenalty

    ids = torch.tensor([[0, 0, 5, 6], [7, 5, 6, 0]])  # row 0: two pads (id 0) then 5 6; row 1 writes 0 itself
    scores = torch.tensor([[2.0, 1.0, 1.0, 1.0, 1.0, 2.0, -2.0, 1.0, 1.0]] * 2)
    out = _RowRepetitionPenalty(2.0, [2, 0])(ids, scores)
    assert out[0].tolist() == [2.0, 1.0, 1.0, 1.0, 1.0, 1.0, -4.0, 1.0, 1.0]  # the padding's id 0 untouched
    assert out[1].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -4.0, 0.5, 1.0]  # a written 0 is penalised


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


def test_stop_matching_may_start_in_the_prompt_but_must_end_in_the_answer():
    assert find_stop("### Input:\nx", ("\n### ",), context="\n") == 0  # the prompt ended with the newline
    assert find_stop("apple\n### Input:", ("\n### ",), context="\n") == 5
    assert find_stop("more", ("\n### ",), context="out:\n### ") is None  # a stop wholly inside the prompt
    assert find_stop("text", ()) is None
    assert cut_at_stop("### Input:\nx", ("\n### ",), context="\n") == ""


def test_special_token_stops_match_on_ids(tiny_model, tiny_tokenizer):
    rule = stop_rule(tiny_model, tiny_tokenizer, ("<bos>", "\n### ", "<|end|>"))
    assert rule.token_ids == {tiny_tokenizer.bos_token_id}  # special: decoding for the answer drops it
    assert rule.texts == ("\n### ", "<|end|>")  # plain text for this tokenizer
    assert rule.eos_ids == {tiny_tokenizer.eos_token_id}
    gen = GenerationSettings(max_new_tokens=10)
    forced = ForcedTokenModel(tiny_model, tiny_tokenizer.bos_token_id, step=4)
    answers = generate_answers(forced, tiny_tokenizer, PROMPTS, gen)
    assert all("<bos>" in a.raw and "<bos>" not in a.text for a in answers)  # unstopped, it just vanishes
    prompt, free = next((p, a) for p, a in zip(PROMPTS, answers) if a.raw.split("<bos>")[1].strip())
    stopped = generate_answers(forced, tiny_tokenizer, [prompt], gen, stop_strings=("<bos>",))[0]
    before = tiny_tokenizer.decode(tiny_tokenizer.encode(free.raw.split("<bos>")[0], add_special_tokens=False))
    assert stopped.text == before.strip() and len(stopped.text) < len(free.text)
    assert stopped.raw.endswith("<bos>")  # the only row ended there, so the batch ended there


def test_a_row_cut_early_keeps_its_raw_continuation(tiny_model, tiny_tokenizer):
    gen = GenerationSettings(max_new_tokens=16, batch_size=8)
    prompts = PROMPTS[:4]
    full = generate_answers(tiny_model, tiny_tokenizer, prompts, gen)
    row, stop = next((i, a.text[3:6]) for i, a in enumerate(full)
                     if len(a.text) > 8 and all(a.text[3:6] not in b.raw for b in full if b is not a))
    cut = generate_answers(tiny_model, tiny_tokenizer, prompts, gen, stop_strings=(stop,))
    assert cut[row].text == full[row].text[:3].strip()
    assert cut[row].raw == full[row].raw  # the batch went on for the other rows, so the row's raw goes on too
    assert [a.text for i, a in enumerate(cut) if i != row] == [a.text for i, a in enumerate(full) if i != row]
    # What ended it is decided at the stop, not where the batch ended: few tokens, "stop", never "cut".
    assert cut[row].ended_by == "stop" and cut[row].n_tokens < full[row].n_tokens
    assert not ran_into_limit(cut[row].n_tokens, gen.max_new_tokens, cut[row].ended_by)


def test_each_answer_records_its_new_tokens_and_what_ended_it(tiny_tokenizer):
    eos, bos = tiny_tokenizer.eos_token_id, tiny_tokenizer.bos_token_id
    rule = StopRule(texts=("\n### ",), token_ids=frozenset({bos}), eos_ids=frozenset({eos}))
    words = tiny_tokenizer.encode("apple banana cherry", add_special_tokens=False)
    ended = cut_answer(tiny_tokenizer, [*words, eos, eos, eos], rule)
    assert (ended.n_tokens, ended.ended_by) == (len(words) + 1, "eos") and ended.text == "apple banana cherry"
    stopped = cut_answer(tiny_tokenizer, [words[0], bos, *words[1:], eos], rule)  # the stop came before EOS
    assert (stopped.n_tokens, stopped.ended_by) == (2, "stop")
    cut = cut_answer(tiny_tokenizer, words, rule)
    assert (cut.n_tokens, cut.ended_by) == (len(words), None) and ran_into_limit(cut.n_tokens, len(words), None)
    # A text stop: the first prefix whose text holds it, though the row went on to EOS afterwards.
    ids = tiny_tokenizer.encode("apple banana\n### Input: cherry", add_special_tokens=False) + [eos]
    first = next(k for k in range(1, len(ids)) if "\n### " in tiny_tokenizer.decode(ids[:k]))
    text_stop = cut_answer(tiny_tokenizer, ids, rule)
    assert (text_stop.n_tokens, text_stop.ended_by) == (first, "stop") and text_stop.text == "apple banana"


def test_forced_eos_ends_every_row_and_unended_rows_ran_into_the_limit(tiny_model, tiny_tokenizer):
    gen = GenerationSettings(max_new_tokens=8, batch_size=4)
    free = generate_answers(tiny_model, tiny_tokenizer, PROMPTS, gen)
    assert [a.text for a in free] == generate(tiny_model, tiny_tokenizer, PROMPTS, gen)  # texts unchanged
    for a in free:
        limit_hit = a.ended_by is None
        assert a.n_tokens == gen.max_new_tokens if limit_hit else 1 <= a.n_tokens <= gen.max_new_tokens
    forced = generate_answers(ForcedTokenModel(tiny_model, tiny_tokenizer.eos_token_id, step=3), tiny_tokenizer,
                              PROMPTS, gen)
    assert all(a.ended_by == "eos" and a.n_tokens <= 4 for a in forced)
    assert not any(ran_into_limit(a.n_tokens, gen.max_new_tokens, a.ended_by) for a in forced)


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


@pytest.mark.slow
def test_batched_greedy_equals_one_at_a_time_on_the_real_model(embedded_base):
    loaded = embedded_base  # tests/conftest.py: the real model, loaded once for the tests that only read it
    template = get_template("alpaca")
    examples = [Example("Uppercase the word.", "", "river"), Example("Reverse the letters.", "", "lemon"),
                Example("Sort the words alphabetically.", "", "pear apple fig kiwi"),
                Example("Count the words.", "", "red fox runs"), Example("Give the first word.", ""),
                Example("Uppercase the words.", "", "one two three four five six")]
    prompts = [template.prompt(ex) for ex in examples]
    gen = GenerationSettings(max_new_tokens=16, batch_size=4)
    batched = generate(loaded.model, loaded.tokenizer, prompts, gen)
    assert batched == one_at_a_time(loaded.model, loaded.tokenizer, prompts, gen.max_new_tokens)
    # The base model runs on into the next "### " section; the template's stop cuts it there, raw text kept.
    rule = stop_rule(loaded.model, loaded.tokenizer, ("<end_of_turn>", *template.stop_strings))
    assert rule.token_ids == {loaded.tokenizer.convert_tokens_to_ids("<end_of_turn>")} and rule.texts == ("\n### ",)
    cut = generate_answers(loaded.model, loaded.tokenizer, prompts, gen, stop_strings=template.stop_strings)
    assert all("###" not in a.text and a.raw.strip().startswith(a.text) for a in cut)
    assert any("\n### " in a.raw for a in cut) and [a.text for a in cut] != batched


def test_generation_keeps_the_callers_thread_count_unless_balancing(tiny_model):
    import torch

    from studio.evaluate import generation
    from studio.model.threads import ThreadPolicy, use_threads

    with use_threads(ThreadPolicy(1)), generation._cpu_threads(tiny_model) as balancer:
        assert balancer is None and torch.get_num_threads() == 1
    with use_threads(ThreadPolicy(1, balance=True)), generation._cpu_threads(tiny_model) as balancer:
        assert balancer is not None and torch.get_num_threads() == 1  # never above what the caller gave
