"""Before/after: base = adapter disabled, tuned = adapter on, both scored (studio.evaluate.before_after)."""
from __future__ import annotations

import pytest

from studio.data.templates import get_template
from studio.errors import DataError
from studio.evaluate import before_after
from studio.evaluate.before_after import answer_both, compare, fit_length, prefill_seconds
from studio.evaluate.chat import ask_both
from studio.evaluate.generation import cut_at_stop, generate_answers
from studio.evaluate.sharing import using
from studio.examples import Example
from studio.settings import GenerationSettings
from tests.builders import one_at_a_time, tuned_model
from tests.tiny import make_tiny_model


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
    assert stages == ["base", "tuned", "base", "tuned"]  # both models answer a batch before the next one
    assert result.template == "alpaca" and result.generation["max_new_tokens"] == 8
    assert result.base.n == 3 and result.base_seconds > 0 and result.tuned_seconds > 0
    assert result.rows[0].reference == "APPLE" and result.rows[0].input == "apple"
    base, tuned = answer_both(model, tiny_tokenizer, template, "Reverse the letters.", "dog", gen)
    assert (base, tuned) == (result.rows[2].base, result.rows[2].tuned)
    with pytest.raises(DataError):
        answer_both(model, tiny_tokenizer, template, "  ", "", gen)


def test_base_and_tuned_are_cut_by_the_same_stops_and_keep_their_raw_text(tiny_tokenizer):
    examples = [Example("Uppercase the word.", "APPLE", "apple"), Example("Count the words.", "2", "kite lemon"),
                Example("Reverse the letters.", "god", "dog"), Example("Sort the words.", "a b", "b a")]
    gen = GenerationSettings(max_new_tokens=12, batch_size=4)
    model = tuned_model(tiny_tokenizer)
    plain = get_template("custom", "{instruction}\n{input}\n{output}")
    uncut = compare(model, tiny_tokenizer, plain, examples, gen)
    assert uncut.stop_strings == [] and uncut.eos_tokens == ["<eos>"]
    # A letter both models write: a format that ends answers with it makes it the stop for both.
    base, tuned = "".join(r.base for r in uncut.rows), "".join(r.tuned for r in uncut.rows)
    letter = max((c for c in "abcdefghijklmnopqrstuvwxyz" if c in base and c in tuned),
                 key=lambda c: base.count(c) + tuned.count(c))
    template = get_template("custom", "{instruction}\n{input}\n{output}" + letter)
    result = compare(model, tiny_tokenizer, template, examples, gen)
    assert result.stop_strings == [letter]
    for before, after in zip(uncut.rows, result.rows):
        assert after.base == cut_at_stop(before.base, (letter,)) and after.tuned == cut_at_stop(before.tuned, (letter,))
        assert letter not in after.base + after.tuned
        assert after.base_raw.lstrip().startswith(after.base) and after.tuned_raw.lstrip().startswith(after.tuned)
    assert any(r.base != u.base for r, u in zip(result.rows, uncut.rows))  # the cut did happen, to both
    assert any(r.tuned != u.tuned for r, u in zip(result.rows, uncut.rows))
    assert set(result.changes) == {"bleu", "chrf", "rouge_l", "exact_match"}
    assert all(c.low is not None and c.low <= c.delta <= c.high for c in result.changes.values())
    tally = result.tally
    assert tally.wins + tally.ties + tally.losses == 4 and result.bootstrap["resamples"] == 1000


def test_answer_both_reads_the_streamed_answers_to_the_end_and_keeps_what_generate_gave(tiny_tokenizer):
    # One "ask both models": the blocking call is the streaming one drained; sampled answers stay those a plain
    # seeded generate gives for one prompt, with the adapter off and on.
    model, template = tuned_model(tiny_tokenizer), get_template("alpaca")
    gen = GenerationSettings(max_new_tokens=10, do_sample=True, temperature=0.9, top_p=0.95)
    prompt = [template.prompt(Example("Reverse the letters.", "", "dog"))]
    expected = []
    for adapter in (False, True):
        with using(model, adapter=adapter):
            answer = generate_answers(model, tiny_tokenizer, prompt, gen, stop_strings=tuple(template.stop_strings))
            expected.append(answer[0].text)
    streamed = {who: r.text for who, r in ask_both(model, tiny_tokenizer, template, "Reverse the letters.", "dog", gen)}
    got = answer_both(model, tiny_tokenizer, template, "Reverse the letters.", "dog", gen)
    assert got == tuple(expected) == (streamed["base"], streamed["tuned"])


def test_the_prefill_is_the_padded_prompt_tokens_at_the_timed_rate(tiny_tokenizer, monkeypatch):
    from studio.data.formatting import prompt_ids

    prompts = ["Say hi.", "Name a river in France.", "Pick a river in France."]  # no shared prefix
    lengths = [len(prompt_ids(tiny_tokenizer, p)) for p in prompts]
    assert lengths[1] == lengths[2] > lengths[0]
    read = []
    monkeypatch.setattr(before_after, "_read", lambda model, ids: read.append(tuple(ids.shape)))
    clock = iter([10.0, 12.0])  # the timed read takes 2 s
    monkeypatch.setattr(before_after.time, "perf_counter", lambda: next(clock))
    seconds = prefill_seconds(make_tiny_model(tiny_tokenizer), tiny_tokenizer, prompts, batch_size=2)
    assert read == [(before_after.PREFILL_ROWS, lengths[1])]  # copies of the longest prompt
    # Batches: the two equal-length prompts, then the short one alone: 2 x long + 1 x short tokens read.
    assert seconds == pytest.approx((2 * lengths[1] + lengths[0]) * 2.0 / (before_after.PREFILL_ROWS * lengths[1]))
    monkeypatch.undo()
    assert prefill_seconds(tuned_model(tiny_tokenizer), tiny_tokenizer, prompts, batch_size=48) > 0  # really read


def test_the_fitted_length_leaves_the_budget_room_to_read_the_prompts(tiny_tokenizer, monkeypatch):
    examples = [Example("Say it.", "Paris is the capital of France. " * 10)] * 4
    gen = GenerationSettings(answer_budget_seconds=100)
    monkeypatch.setattr(before_after, "decoding_rate", lambda *a, **k: 1.0)
    monkeypatch.setattr(before_after, "prefill_seconds", lambda *a, **k: 0.0)
    free = fit_length(tuned_model(tiny_tokenizer), tiny_tokenizer, get_template("alpaca"), examples, gen)
    monkeypatch.setattr(before_after, "prefill_seconds", lambda *a, **k: 20.0)
    reading = fit_length(tuned_model(tiny_tokenizer), tiny_tokenizer, get_template("alpaca"), examples, gen)
    assert free.max_new_tokens == 50 and reading.max_new_tokens == 30  # (100 - 2 x 20) s x 1 step/s / 2 passes
    assert reading.reason.endswith(", after 20 s a pass reading the prompts.")
