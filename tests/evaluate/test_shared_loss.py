"""The answer loss read on generation's prompt cache (studio.evaluate.shared_loss): the same losses as reading
prompt + answer afresh, the same answers as without it, and every row it cannot read scored on its own."""
from __future__ import annotations

from dataclasses import replace

import pytest

from studio.data.formatting import Features, prompt_ids, tokenize_dataset
from studio.data.templates import get_template
from studio.evaluate import shared_loss
from studio.evaluate.answer_loss import answer_loss
from studio.evaluate.before_after import compare
from studio.evaluate.generation import generate_answers
from studio.evaluate.prefill import batch_plan
from studio.evaluate.shared_loss import SharedLoss, reference_answers
from studio.evaluate.sharing import using
from studio.examples import Example
from studio.settings import GenerationSettings
from tests.builders import tuned_model
from tests.evaluate.test_answer_loss import EXAMPLES, lock_is_free
from tests.evaluate.test_prefill import hybrid_model
from tests.tiny import WORDS

# Prompts of unlike lengths (a batch read by length group, `prefill`) and alike ones (the one plain pass).
UNLIKE = EXAMPLES + [Example(" ".join(WORDS[:n]), " ".join(WORDS[n:n + 3])) for n in (9, 14, 20)]
ALIKE = [Example(f"Uppercase {w}.", w.upper()) for w in WORDS[:6]]
GREEDY = GenerationSettings(max_new_tokens=6, batch_size=16, baseline_shots=0)
TEMPLATE = "instruction_output"  # short prompts: the tiny model's sliding window is 64 tokens


def shared(model, tokenizer, examples, gen=GREEDY, max_length=256, template="instruction_output", precision="fp32"):
    """Compare's answers with the loss read on their caches, the examples read on a cache, and the loss record."""
    loss = SharedLoss.build(tokenizer, get_template(template), examples, max_length, precision=precision)
    result = compare(model, tokenizer, get_template(template), examples, gen, loss=loss)
    cached = set(loss.scores["base"]) & set(loss.scores["tuned"])
    return result, cached, loss.finish(model)


def assert_same_losses(got, expected):
    assert [e.index for e in got.examples] == [e.index for e in expected.examples]
    for a, b in zip(got.examples, expected.examples):
        assert a.tokens == b.tokens
        assert a.base == pytest.approx(b.base, abs=1e-5) and a.tuned == pytest.approx(b.tuned, abs=1e-5)


def test_reference_answers_split_where_the_prompt_is_the_one_generation_reads():
    f = Features(input_ids=[1, 5, 6, 7, 8, 2], completion_mask=[0, 0, 0, 1, 1, 1], n_prompt=3, n_completion=3,
                 truncated=False)
    assert reference_answers([f], [[1, 5, 6]]) == [[7, 8, 2]]
    assert reference_answers([f], [[1, 5, 9]]) == [None]  # a prompt encoded otherwise is scored on its own
    nothing = replace(f, completion_mask=[0] * 6)  # truncation left no answer
    assert reference_answers([nothing], [[1, 5, 6, 7, 8, 2]]) == [None]


@pytest.mark.parametrize("examples", [UNLIKE, ALIKE], ids=["length groups", "plain batch"])
def test_the_losses_on_the_cache_equal_reading_prompt_and_answer_afresh(tiny_tokenizer, monkeypatch, examples):
    model = tuned_model(tiny_tokenizer)
    rows = [prompt_ids(tiny_tokenizer, get_template(TEMPLATE).prompt(e)) for e in examples]
    assert batch_plan(model, rows, 1).plain == (examples is ALIKE)
    alone = []
    monkeypatch.setattr(shared_loss, "batch_losses",
                        lambda *a, **k: alone.append(len(a[1])) or batch_losses(*a, **k))
    _, cached, record = shared(model, tiny_tokenizer, examples)
    assert not alone and cached == set(range(len(examples)))  # every row read on a cache
    assert_same_losses(record, answer_loss(model, tiny_tokenizer, get_template(TEMPLATE), examples, 256))
    assert abs(record.examples[0].base - record.examples[0].tuned) > 1e-3  # the adapter does change it
    assert record.base_seconds > 0 and record.tuned_seconds > 0 and not record.partial
    assert lock_is_free(model)


def test_the_answers_are_the_same_with_the_loss_read_on_their_cache(tiny_tokenizer):
    model = tuned_model(tiny_tokenizer)
    with_loss, _, _ = shared(model, tiny_tokenizer, UNLIKE + ALIKE)
    without = compare(model, tiny_tokenizer, get_template(TEMPLATE), UNLIKE + ALIKE, GREEDY)
    assert [(r.base_raw, r.tuned_raw) for r in with_loss.rows] == [(r.base_raw, r.tuned_raw) for r in without.rows]


def test_a_hybrid_model_with_a_sliding_window_and_answers_that_pass_it(tiny_tokenizer):
    model = hybrid_model(tiny_tokenizer, sliding_window=40)
    long = [Example(" ".join(WORDS[:4]), " ".join(WORDS * 2)), Example("Count the words.", "2", "kite lemon")]
    examples = UNLIKE[:4] + long
    _, cached, record = shared(model, tiny_tokenizer, examples, max_length=120)
    # The long answer would not fit the window on top of its batch: read afresh; the others on the cache.
    assert cached == set(range(len(examples))) - {4}
    assert_same_losses(record, answer_loss(model, tiny_tokenizer, get_template(TEMPLATE), examples, 120))


def test_an_answer_read_past_the_window_of_its_batch_is_read_afresh(tiny_tokenizer):
    # A shared start and one shorter prompt: its row has a hole between the start and its own tokens, so on the cache
    # its answer sits further from the start than its positions say, and the window would cut what afresh it sees.
    model = hybrid_model(tiny_tokenizer, sliding_window=40)
    start = " ".join(WORDS[:6])
    examples = [Example(f"{start} {' '.join(WORDS[6:11])}", answer) for answer in ("yes", "no", "maybe")]
    examples.append(Example(start, " ".join(WORDS[:10] * 2)))
    rows = [prompt_ids(tiny_tokenizer, get_template(TEMPLATE).prompt(e)) for e in examples]
    answer = reference_answers(tokenize_dataset(tiny_tokenizer, get_template(TEMPLATE), examples, 120), rows)[3]
    plan = batch_plan(model, rows, 1)
    assert plan.prefix and not plan.plain and len(rows[3]) + len(answer) <= 40 < max(map(len, rows)) + len(answer)
    _, cached, record = shared(model, tiny_tokenizer, examples, max_length=120)
    assert cached == {0, 1, 2}
    assert_same_losses(record, answer_loss(model, tiny_tokenizer, get_template(TEMPLATE), examples, 120))


def test_beams_and_a_model_without_a_dynamic_cache_score_every_row_on_its_own(tiny_tokenizer, monkeypatch):
    model = tuned_model(tiny_tokenizer)
    expected = answer_loss(model, tiny_tokenizer, get_template(TEMPLATE), UNLIKE, 256)
    _, cached, record = shared(model, tiny_tokenizer, UNLIKE, replace(GREEDY, num_beams=2))
    assert not cached
    assert_same_losses(record, expected)
    monkeypatch.setattr(shared_loss, "_room", lambda cache, width: 0)
    _, cached, record = shared(model, tiny_tokenizer, UNLIKE)
    assert not cached
    assert_same_losses(record, expected)


def test_a_stop_keeps_the_losses_of_the_examples_both_models_answered(tiny_tokenizer):
    model = tuned_model(tiny_tokenizer)
    turns = []
    loss = SharedLoss.build(tiny_tokenizer, get_template(TEMPLATE), UNLIKE, 256)
    result = compare(model, tiny_tokenizer, get_template(TEMPLATE), UNLIKE, replace(GREEDY, batch_size=4),
                     progress=lambda who, done, total: turns.append(who), should_stop=lambda: len(turns) >= 2,
                     loss=loss)
    record = loss.finish(model)
    assert result.partial and record.partial and record.n == len(result.rows) == 4 and record.planned == len(UNLIKE)


def test_progress_counts_each_models_scored_examples(tiny_tokenizer):
    model = tuned_model(tiny_tokenizer)
    seen = []
    loss = SharedLoss.build(tiny_tokenizer, get_template(TEMPLATE), ALIKE, 256,
                            progress=lambda who, done, total: seen.append((who, done, total)))
    with using(model, adapter=False):
        generate_answers(model, tiny_tokenizer, [get_template(TEMPLATE).prompt(e) for e in ALIKE], GREEDY,
                         on_cache=loss.reader("base", range(len(ALIKE))))
    assert seen == [("base", len(ALIKE), len(ALIKE))] and loss.answered["base"] == set(range(len(ALIKE)))


def batch_losses(*args, **kwargs):
    from studio.evaluate.answer_loss import batch_losses as real

    return real(*args, **kwargs)
