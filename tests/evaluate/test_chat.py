"""Chat with both models (studio.evaluate.chat): prompts in the run's template with history, answers streamed and
cut exactly as Compare cuts them, stop mid-stream, base first then tuned, each after its own earlier turns."""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from studio.data.templates import get_template
from studio.errors import DataError
from studio.evaluate import chat
from studio.evaluate.before_after import compare
from studio.evaluate.chat import (
    ask_both,
    chat_example,
    chat_prompt,
    converse,
    held_back,
    stream_answer,
    visible_text,
)
from studio.evaluate.generation import generate_answers, stop_rule
from studio.examples import Example
from studio.settings import GenerationSettings
from tests.builders import ForcedTokenModel, tuned_model

GREEDY = GenerationSettings(max_new_tokens=16, batch_size=4)
EXAMPLES = [Example("Uppercase the word.", "APPLE", "apple"), Example("Reverse the letters.", "god", "dog"),
            Example("Count the words.", "2", "kite lemon")]


@pytest.fixture(scope="module")
def model(tiny_tokenizer):
    return tuned_model(tiny_tokenizer)


@pytest.mark.parametrize("template", ["alpaca", "instruction_output", "chatml", "phi3"])
def test_a_streamed_answer_ends_as_compare_cuts_it_and_grows_token_by_token(model, tiny_tokenizer, template):
    t = get_template(template)
    result = compare(model, tiny_tokenizer, t, EXAMPLES, GREEDY)
    for example, row in zip(EXAMPLES, result.rows):
        for adapter, expected in ((False, row.base), (True, row.tuned)):
            replies = list(stream_answer(model, tiny_tokenizer, t.prompt(example), GREEDY, tuple(t.stop_strings),
                                         adapter=adapter))
            assert replies[-1].done and replies[-1].text == expected
            assert not any(r.done for r in replies[:-1]) and len(replies) >= 2  # one update per token, then done
            assert all(not s or s not in r.text for r in replies for s in t.stop_strings)


def test_a_special_token_stop_ends_the_stream_as_it_ends_compare(tiny_model, tiny_tokenizer):
    forced = ForcedTokenModel(tiny_model, tiny_tokenizer.bos_token_id, step=3)
    prompt = get_template("alpaca").prompt(EXAMPLES[0])
    expected = generate_answers(forced, tiny_tokenizer, [prompt], GREEDY, stop_strings=("<bos>",))[0]
    replies = list(stream_answer(forced, tiny_tokenizer, prompt, GREEDY, ("<bos>",)))
    assert replies[-1].text == expected.text and replies[-1].ending == "ended with <bos>"
    assert len(replies) <= 5  # it stopped at the forced token instead of running to the limit


def test_the_stream_never_shows_the_start_of_a_stop_string(tiny_tokenizer, tiny_model):
    assert held_back("answer\n##", ("\n### ",)) == "answer"
    assert held_back("answer\n", ("\n### ",)) == "answer"
    assert held_back("answer #1", ("\n### ",)) == "answer #1"
    rule = stop_rule(tiny_model, tiny_tokenizer, ("\n### ",))
    ids = tiny_tokenizer.encode("DOG\n### Input", add_special_tokens=False)
    assert visible_text(tiny_tokenizer, ids, rule, "") == "DOG"


def test_stop_mid_stream_keeps_what_was_written(model, tiny_tokenizer):
    t = get_template("instruction_output")
    stop = threading.Event()
    replies = []
    for reply in stream_answer(model, tiny_tokenizer, t.prompt(EXAMPLES[1]), GenerationSettings(max_new_tokens=40),
                               (), should_stop=stop.is_set):
        replies.append(reply)
        if len(replies) == 3:
            stop.set()
    assert replies[-1].done and replies[-1].ending == "stopped"
    assert len(replies) < 40 and replies[-1].text.startswith(replies[1].text)


def test_a_chat_prompt_renders_real_turns_and_drops_the_oldest_to_fit(tiny_tokenizer):
    turns = [("Hi", "Hello!"), ("Uppercase dog", "DOG")]
    chatml = get_template("chatml")
    prompt, dropped = chat_prompt(chatml, tiny_tokenizer, turns, "And cat?", system="Be brief.")
    assert dropped == 0
    assert prompt == chatml.prompt(chat_example(turns, "And cat?", "Be brief."))
    assert prompt.count("<|im_start|>user") == 3 and "<|im_start|>system\nBe brief." in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    alpaca = get_template("alpaca").prompt(chat_example(turns, "And cat?"))
    assert "User: Hi\nAssistant: Hello!\nUser: Uppercase dog\nAssistant: DOG\n\nAnd cat?" in alpaca
    short, dropped = chat_prompt(chatml, tiny_tokenizer, turns, "And cat?", max_tokens=40)
    assert dropped >= 1 and "Hello!" not in short and "And cat?" in short
    with pytest.raises(DataError, match="Type a message"):
        chat_prompt(chatml, tiny_tokenizer, turns, "   ")


def test_converse_answers_base_first_each_after_its_own_turns(model, tiny_tokenizer):
    t = get_template("alpaca")
    turns = {"base": [("Hi", "base said this")], "tuned": [("Hi", "tuned said that")]}
    order, finals = [], {}
    for who, reply in converse(model, tiny_tokenizer, t, turns, "Reverse dog", GREEDY):
        if not order or order[-1] != who:
            order.append(who)
        if reply.done:
            finals[who] = reply.text
    assert order == ["base", "tuned"]
    for who, adapter in (("base", False), ("tuned", True)):
        prompt = t.prompt(chat_example(turns[who], "Reverse dog"))
        assert finals[who] == list(stream_answer(model, tiny_tokenizer, prompt, GREEDY, tuple(t.stop_strings),
                                                 adapter=adapter))[-1].text


def test_a_stop_during_the_base_answer_skips_the_tuned_one(model, tiny_tokenizer):
    stop = threading.Event()
    seen = []
    for who, reply in ask_both(model, tiny_tokenizer, get_template("instruction_output"), "Reverse", "dog",
                               GenerationSettings(max_new_tokens=30), should_stop=stop.is_set):
        seen.append((who, reply))
        stop.set()
    assert [w for w, r in seen if r.done] == ["base", "tuned"]
    assert seen[-1][1].ending == "stopped" and seen[-1][1].text == ""
    with pytest.raises(DataError, match="Type an instruction"):
        next(ask_both(model, tiny_tokenizer, get_template("alpaca"), " ", "", GREEDY))


def test_two_streams_on_one_model_at_once_give_the_answers_each_gives_alone(model, tiny_tokenizer):
    """Base and tuned toggle one PeftModel's adapter: the model's lock keeps concurrent streams apart."""
    t = get_template("alpaca")
    prompts = [t.prompt(e) for e in EXAMPLES]
    alone = {(p, a): list(stream_answer(model, tiny_tokenizer, p, GREEDY, tuple(t.stop_strings), a))[-1].text
             for p in prompts for a in (False, True)}
    results: dict = {}

    def run(prompt: str, adapter: bool) -> None:
        results[(prompt, adapter)] = list(stream_answer(model, tiny_tokenizer, prompt, GREEDY,
                                                        tuple(t.stop_strings), adapter))[-1].text

    threads = [threading.Thread(target=run, args=key) for key in alone]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == alone
    assert len(set(alone.values())) > 1  # base and tuned really differ, so a mix-up would show


def test_the_chat_sizes_its_answers_by_compares_rule_without_a_time_budget():
    from studio.evaluate.chat import CHAT_GENERATION
    from studio.evaluate.lengths import sized_to_references

    short, why = sized_to_references(CHAT_GENERATION, [3, 5, 10])
    assert short.max_new_tokens == 64 and "all 3 references fit" in why
    long, why = sized_to_references(CHAT_GENERATION, [100] * 20)
    assert long.max_new_tokens == 120 and "95th percentile" in why and long.do_sample
    by_hand, why = sized_to_references(replace(CHAT_GENERATION, max_new_tokens_auto=False), [100] * 20)
    assert by_hand.max_new_tokens == 64 and "set by hand" in why


def test_the_chat_guards_long_answers_against_loops_as_compare_does():
    from studio.evaluate.chat import CHAT_GENERATION
    from studio.evaluate.lengths import sized_to_references

    assert sized_to_references(CHAT_GENERATION, [3, 5, 10])[0].repetition_penalty == 1.0
    long, why = sized_to_references(CHAT_GENERATION, [100] * 20)
    assert long.repetition_penalty == 1.15 and "loop guard" in why
    set_long, _ = sized_to_references(replace(CHAT_GENERATION, max_new_tokens=200, max_new_tokens_auto=False), [5])
    assert set_long.repetition_penalty == 1.15
    off, _ = sized_to_references(replace(CHAT_GENERATION, repetition_penalty_auto=False), [100] * 20)
    assert off.repetition_penalty == 1.0


def test_an_answer_that_ran_to_the_limit_in_a_loop_says_so(tiny_model, tiny_tokenizer):
    rule = stop_rule(tiny_model, tiny_tokenizer, ("\n### ",))
    loop = tiny_tokenizer.encode("I'm sorry, I'm sorry. " * 12, add_special_tokens=False)
    fresh = tiny_tokenizer.encode("The capital of France is Paris, a city on the Seine.", add_special_tokens=False)
    assert chat._ending(tiny_tokenizer, loop, rule, "", False, len(loop)) == "ran to the token limit, stuck in a loop"
    assert chat._ending(tiny_tokenizer, fresh, rule, "", False, len(fresh)) == "ran to the token limit"
    assert chat._ending(tiny_tokenizer, loop, rule, "", False, len(loop) + 1) == "ended"
