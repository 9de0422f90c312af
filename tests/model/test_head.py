"""The output head at inference (studio.model.head): contiguous input, the weight laid out once, training untouched."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from studio.model import head as module
from studio.model.head import fast_head, laid_out_weight
from studio.train.fused_head import fused_head_applies
from tests.tiny import make_tiny_model

pytestmark = pytest.mark.skipif(module._LAY_OUT is None, reason="this torch has no oneDNN weight layout")


@pytest.fixture
def model(tiny_tokenizer):
    return fast_head(make_tiny_model(tiny_tokenizer))


def test_inference_logits_are_the_heads_from_a_copy_laid_out_once(model, monkeypatch):
    head = model.get_output_embeddings()
    calls = []
    real = module._LAY_OUT
    monkeypatch.setattr(module, "_LAY_OUT", lambda w: calls.append(1) or real(w))
    hidden = torch.randn(3, 5, head.in_features)
    last = hidden[:, -1:, :]  # what `generate`'s first step hands the head: a strided view
    assert not last.is_contiguous()
    with torch.inference_mode():
        first, again = head(last), head(hidden)
    assert torch.allclose(first, F.linear(last, head.weight), atol=1e-5)
    assert torch.allclose(again, F.linear(hidden, head.weight), atol=1e-5)
    assert len(calls) == 1 and laid_out_weight(head) is laid_out_weight(head)
    with torch.no_grad():
        head.weight.mul_(2)  # a weight changed in place is laid out again
        assert torch.equal(head(hidden), F.linear(hidden, head.weight))  # the Trainer's evaluation: the plain product
    assert len(calls) == 1
    with torch.inference_mode():
        assert torch.allclose(head(hidden), F.linear(hidden, head.weight), atol=1e-5)
    assert len(calls) == 2


def test_training_keeps_the_plain_product_and_its_gradient(model):
    head = model.get_output_embeddings()
    hidden = torch.randn(4, head.in_features, requires_grad=True)
    out = head(hidden)
    assert torch.equal(out, F.linear(hidden, head.weight))
    out.sum().backward()
    assert hidden.grad is not None and torch.allclose(hidden.grad, head.weight.sum(dim=0).expand(4, -1), atol=1e-5)
    head.weight.requires_grad_(False)
    assert type(head) is torch.nn.Linear and fused_head_applies(head, hidden)  # training's fused head still applies


def test_the_model_answers_as_before_and_a_copy_takes_no_laid_out_weight(tiny_tokenizer, model):
    plain = make_tiny_model(tiny_tokenizer)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.inference_mode():
        ours = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False)
        theirs = plain.generate(input_ids=ids, max_new_tokens=6, do_sample=False)
    assert torch.equal(ours, theirs)
    assert fast_head(model) is model and model.get_output_embeddings() in module._LAID_OUT  # once; laid out
    twin = copy.deepcopy(model)  # what a merge for export does
    assert twin.get_output_embeddings() not in module._LAID_OUT
    with torch.inference_mode():
        assert torch.equal(twin.generate(input_ids=ids, max_new_tokens=6, do_sample=False), ours)
