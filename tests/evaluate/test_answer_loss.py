"""Held-out answer loss (studio.evaluate.answer_loss): the reference answers' loss, adapter off and on."""
from __future__ import annotations

import json
import math
import threading

import pytest
import torch
import torch.nn.functional as F

from studio.data.formatting import tokenize_dataset
from studio.data.templates import get_template
from studio.evaluate import answer_loss as module
from studio.evaluate.answer_loss import NothingScored, answer_loss
from studio.evaluate.answer_loss_record import AnswerLoss
from studio.evaluate.generation import GenerationStopped
from studio.evaluate.sharing import adapter_off, model_lock
from studio.examples import Example
from tests.builders import tuned_model
from tests.tiny import make_tiny_model

EXAMPLES = [
    Example("Uppercase the word.", "APPLE", "apple"),
    Example("Count the words.", "2", "kite lemon"),
    Example("Reverse the letters.", "god", "dog"),
    Example("Sort the words alphabetically.", "apple banana cherry grape lemon mango", "mango apple lemon grape"),
    Example("What is the capital of France?", "Paris is the capital. " * 4),
    Example("First word.", "river", "river ocean piano queen"),
    Example("Last word.", "queen", "river ocean piano queen"),
]


def lock_is_free(model) -> bool:
    """Whether another thread can take the model's fair lock now (every forward pass gave it back)."""
    def take() -> None:
        with model_lock(model):
            pass

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(timeout=10)
    return not thread.is_alive()


def naive_losses(model, tokenizer, template, examples, max_length):
    """The reference: full logits from the model's own forward, one example at a time, no padding."""
    out = []
    with torch.inference_mode():
        for f in tokenize_dataset(tokenizer, template, examples, max_length):
            ids = torch.tensor([f.input_ids])
            logp = F.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            n = len(tokenizer(f"{examples[len(out)].output}", add_special_tokens=False)["input_ids"]) + 1
            n = min(n, f.n_completion)  # truncation may cut the answer's end
            # As in training: the first token of a sequence has nothing before it to be predicted from.
            targets = range(max(len(f.input_ids) - n, 1), len(f.input_ids))
            out.append((-sum(logp[t - 1, f.input_ids[t]].item() for t in targets) / len(targets), len(targets)))
    return out


def test_the_loss_equals_a_full_logits_computation(tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(module, "HEAD_ROWS", 5)  # several head chunks per batch
    template, model = get_template("alpaca"), tuned_model(tiny_tokenizer)
    # 40 cuts the prompts' start; 16 leaves the long answer no prompt at all and cuts its end.
    for max_length in (256, 40, 16):
        result = answer_loss(model, tiny_tokenizer, template, EXAMPLES, max_length, batch_size=3)
        tuned = naive_losses(model, tiny_tokenizer, template, EXAMPLES, max_length)
        with adapter_off(model):
            base = naive_losses(model, tiny_tokenizer, template, EXAMPLES, max_length)
        assert [e.index for e in result.examples] == list(range(len(EXAMPLES)))
        for e, (b, n), (t, _) in zip(result.examples, base, tuned):
            assert e.tokens == n and e.base == pytest.approx(b, abs=1e-5) and e.tuned == pytest.approx(t, abs=1e-5)
        assert abs(result.examples[0].base - result.examples[0].tuned) > 1e-3  # the adapter does change it
        weights = sum(e.tokens for e in result.examples)
        assert result.loss.base == pytest.approx(sum(e.base * e.tokens for e in result.examples) / weights)
        assert result.perplexity.tuned == pytest.approx(math.exp(result.loss.tuned))
        assert not result.partial and result.base_seconds > 0 and result.tuned_seconds > 0
    assert lock_is_free(model)


def test_a_cpu_head_is_scored_a_vocabulary_slice_at_a_time(tiny_tokenizer, monkeypatch):
    calls = []
    real = module.head_cross_entropy_rows
    monkeypatch.setattr(module, "head_cross_entropy_rows", lambda *a, **k: calls.append(len(a[0])) or real(*a, **k))
    template, model = get_template("alpaca"), tuned_model(tiny_tokenizer)
    chunked = answer_loss(model, tiny_tokenizer, template, EXAMPLES, 256)
    assert calls and sum(calls) == sum(e.tokens for e in chunked.examples) * 2  # every scored token, both models
    monkeypatch.setattr(module, "fused_head_applies", lambda head, hidden: False)
    plain = answer_loss(model, tiny_tokenizer, template, EXAMPLES, 256)
    assert [e.tuned for e in chunked.examples] == pytest.approx([e.tuned for e in plain.examples], abs=1e-5)
    assert [e.base for e in chunked.examples] == pytest.approx([e.base for e in plain.examples], abs=1e-5)


@pytest.mark.parametrize(("n", "most", "sizes"), [(0, 5, []), (5, 5, [5]), (6, 5, [3, 3]), (11, 5, [4, 4, 3]),
                                                  (1025, 512, [342, 342, 341])])
def test_head_chunks_are_even(n, most, sizes):
    assert [len(range(n)[part]) for part in module._even_chunks(n, most)] == sizes


def test_adapter_off_is_the_base_model_without_the_adapter(tiny_tokenizer):
    template = get_template("instruction_output")
    adapted = answer_loss(tuned_model(tiny_tokenizer), tiny_tokenizer, template, EXAMPLES, 256)
    plain = answer_loss(make_tiny_model(tiny_tokenizer), tiny_tokenizer, template, EXAMPLES, 256)
    assert [e.base for e in adapted.examples] == pytest.approx([e.base for e in plain.examples], abs=1e-6)
    assert [e.tuned for e in plain.examples] == pytest.approx([e.base for e in plain.examples], abs=1e-6)
    assert plain.same == len(EXAMPLES) and plain.loss.delta == pytest.approx(0.0, abs=1e-6)
    assert [e.tuned for e in adapted.examples] != pytest.approx([e.base for e in adapted.examples], abs=1e-3)


def test_batching_and_padding_do_not_change_the_losses(tiny_tokenizer):
    template, model = get_template("alpaca"), tuned_model(tiny_tokenizer)
    one = answer_loss(model, tiny_tokenizer, template, EXAMPLES, 256, batch_size=1)
    for size in (2, 4, 16):
        batched = answer_loss(model, tiny_tokenizer, template, EXAMPLES, 256, batch_size=size)
        for a, b in zip(one.examples, batched.examples):
            assert (a.index, a.tokens) == (b.index, b.tokens)
            assert b.base == pytest.approx(a.base, abs=1e-5) and b.tuned == pytest.approx(a.tuned, abs=1e-5)


def test_batches_hold_a_token_budget_of_rows_sorted_by_length():
    lengths = [30, 400, 31, 120, 29, 250, 33, 32]
    batches = module.length_batches(lengths, batch_size=64, tokens=130)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [lengths[i] for b in batches for i in b] == sorted(lengths)
    assert all(len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 130 for b in batches)
    assert [len(b) for b in batches] == [4, 1, 1, 1, 1]  # 5 x 33 would pass 130; long rows go alone
    assert [len(b) for b in module.length_batches([10] * 7, batch_size=3, tokens=10_000)] == [3, 3, 1]


def test_a_stop_between_batches_keeps_what_both_scored(tiny_tokenizer):
    template, model = get_template("alpaca"), tuned_model(tiny_tokenizer)
    calls: list[tuple[str, int, int]] = []
    result = answer_loss(model, tiny_tokenizer, template, EXAMPLES, 256, batch_size=3,
                         progress=lambda who, done, total: calls.append((who, done, total)),
                         should_stop=lambda: len(calls) >= 2)
    assert calls == [("base", 3, 7), ("tuned", 3, 7)]  # both models score a batch before the next one
    assert result.partial and result.n == 3 and result.planned == 7
    full = answer_loss(model, tiny_tokenizer, template, EXAMPLES, 256, batch_size=3)
    kept = {e.index: e for e in full.examples}
    assert all(e.tuned == pytest.approx(kept[e.index].tuned, abs=1e-6) for e in result.examples)
    # Stopped during the first batch (after base, before tuned): nothing both models scored.
    calls.clear()
    with pytest.raises(NothingScored) as stopped:
        answer_loss(model, tiny_tokenizer, template, EXAMPLES, 256, batch_size=3,
                    progress=lambda who, done, total: calls.append((who, done, total)),
                    should_stop=lambda: len(calls) >= 1)
    assert isinstance(stopped.value, GenerationStopped) and "any of the 7 examples" in str(stopped.value)
    assert lock_is_free(model)


def test_the_record_goes_through_json(tiny_tokenizer):
    result = answer_loss(tuned_model(tiny_tokenizer), tiny_tokenizer, get_template("alpaca"), EXAMPLES, 256)
    again = AnswerLoss.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result and again.loss.low is not None
