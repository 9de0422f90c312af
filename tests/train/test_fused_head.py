"""The fused head cross-entropy: the standard loss and hidden-state gradient up to float rounding, with and without
soft-cap, scale and bias; each row's loss for scoring; where it applies; and a training step through it equals the
unfused one."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from studio.train.fused_head import fused_head_applies, head_cross_entropy_rows, head_cross_entropy_sum
from studio.train.trainer import _project, causal_parts, fast_completion_loss


def _head(vocab: int, width: int, bias: bool = False) -> nn.Linear:
    torch.manual_seed(0)
    head = nn.Linear(width, vocab, bias=bias)
    head.requires_grad_(False)
    return head


@pytest.mark.parametrize(("cap", "scale", "bias", "chunk"), [
    (None, 1.0, False, 64), (None, 1.0, False, 1000), (30.0, 1.0, False, 64), (None, 0.5, True, 100),
    (5.0, 2.0, True, 37),
])
def test_loss_and_gradient_equal_the_standard_ones(cap, scale, bias, chunk):
    head = _head(1000, 16, bias)
    hidden = torch.randn(9, 16) * 3
    targets = torch.randint(0, 1000, (9,))
    fused_in, plain_in = hidden.clone().requires_grad_(True), hidden.clone().requires_grad_(True)
    fused = head_cross_entropy_sum(fused_in, head, targets, cap, scale, chunk_rows=chunk)
    plain = F.cross_entropy(_project(head, plain_in, cap, scale), targets, reduction="sum")
    (2.5 * fused).backward()
    (2.5 * plain).backward()
    assert fused.item() == pytest.approx(plain.item(), rel=1e-5)
    torch.testing.assert_close(fused_in.grad, plain_in.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("cap", "scale", "bias", "chunk"), [
    (None, 1.0, False, 64), (None, 1.0, False, 1000), (30.0, 1.0, False, 64), (5.0, 2.0, True, 37),
])
def test_each_rows_loss_equals_the_standard_one(cap, scale, bias, chunk):
    head = _head(1000, 16, bias)
    hidden = torch.randn(11, 16) * 3
    targets = torch.randint(0, 1000, (11,))
    rows = head_cross_entropy_rows(hidden, head, targets, cap, scale, chunk_rows=chunk)
    plain = F.cross_entropy(_project(head, hidden, cap, scale), targets, reduction="none")
    torch.testing.assert_close(rows, plain, rtol=1e-5, atol=1e-5)
    assert rows.shape == (11,) and not rows.requires_grad


def test_large_logits_do_not_overflow():
    head = _head(500, 8)
    hidden = torch.randn(4, 8) * 1000  # logits in the thousands: exp() would overflow without the running maximum
    targets = torch.tensor([1, 2, 3, 4])
    h = hidden.clone().requires_grad_(True)
    loss = head_cross_entropy_sum(h, head, targets, None, 1.0, chunk_rows=50)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(h.grad).all()
    assert loss.item() == pytest.approx(F.cross_entropy(head(hidden), targets, reduction="sum").item(), rel=1e-5)
    rows = head_cross_entropy_rows(hidden, head, targets, None, 1.0, chunk_rows=50)
    torch.testing.assert_close(rows, F.cross_entropy(head(hidden), targets, reduction="none"), rtol=1e-5, atol=1e-3)


def test_it_applies_only_to_a_frozen_fp32_linear_on_the_cpu():
    head, hidden = _head(10, 4), torch.randn(2, 4)
    assert fused_head_applies(head, hidden)
    assert not fused_head_applies(head, hidden.double())
    trainable = _head(10, 4)
    trainable.weight.requires_grad_(True)
    assert not fused_head_applies(trainable, hidden)  # its weight's gradient is not computed here
    assert not fused_head_applies(nn.Sequential(head), hidden)


def test_a_training_step_through_it_equals_the_unfused_step(tiny_tokenizer):
    from peft import LoraConfig, get_peft_model

    from tests.tiny import make_tiny_model

    texts = ["### Instruction:\nUppercase river\n\n### Response:\nRIVER", "### Instruction:\nSay hi\n\n### Response:\nhi"]
    enc = tiny_tokenizer(texts, padding=True, return_tensors="pt")
    labels = enc["input_ids"].clone()
    labels[:, :6] = -100
    labels[enc["attention_mask"] == 0] = -100
    inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}
    grads = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = get_peft_model(make_tiny_model(tiny_tokenizer), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
        head = causal_parts(model)[1]
        assert fused_head_applies(head, torch.zeros(1, head.in_features))  # the fused path is the one taken
        loss = fast_completion_loss(model, inputs, fused_head=fused)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for n, p in model.named_parameters() if p.requires_grad]))
    (fused_loss, fused_grads), (plain_loss, plain_grads) = grads
    assert fused_loss == pytest.approx(plain_loss, rel=1e-5)
    for a, b in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
