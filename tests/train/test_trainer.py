"""The fast loss equals the full-logits loss (value and gradients); the metrics callback records and stops."""
from __future__ import annotations

import math

import pytest
import torch
from peft import LoraConfig, get_peft_model

from studio.train.trainer import causal_parts, fast_completion_loss, reference_completion_loss


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine thread barriers cost ~100x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _batch(vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three right-padded rows with prompt positions masked (-100) and padding masked."""
    g = torch.Generator().manual_seed(seed)
    lengths, prompt_lengths, width = [12, 9, 5], [5, 3, 2], 12
    ids = torch.randint(4, vocab, (3, width), generator=g)
    attention = torch.zeros(3, width, dtype=torch.long)
    labels = torch.full((3, width), -100)
    for row, (n, p) in enumerate(zip(lengths, prompt_lengths)):
        attention[row, :n] = 1
        labels[row, p:n] = ids[row, p:n]
        ids[row, n:] = 0
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}


def _lora(model):
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    return get_peft_model(model, config)


@pytest.mark.parametrize("softcap", [None, 5.0])
def test_fast_loss_matches_reference_loss_and_gradients(tiny_model, tiny_tokenizer, softcap):
    tiny_model.config.final_logit_softcapping = softcap
    model = _lora(tiny_model)
    model.train()
    batch = _batch(len(tiny_tokenizer))
    trainable = [p for p in model.parameters() if p.requires_grad]

    torch.manual_seed(0)
    fast = fast_completion_loss(model, batch)
    fast_grads = torch.autograd.grad(fast, trainable)
    torch.manual_seed(0)
    ref = reference_completion_loss(model, batch)
    ref_grads = torch.autograd.grad(ref, trainable)

    assert abs(fast.item() - ref.item()) < 1e-5
    for a, b in zip(fast_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_reference_loss_is_the_models_own_loss(tiny_model, tiny_tokenizer):
    batch = _batch(len(tiny_tokenizer), seed=1)
    own = tiny_model(**batch).loss
    assert abs(reference_completion_loss(tiny_model, batch).item() - own.item()) < 1e-5


def test_num_items_in_batch_sets_the_divisor(tiny_model, tiny_tokenizer):
    batch = _batch(len(tiny_tokenizer), seed=2)
    n = int((batch["labels"][:, 1:] != -100).sum())
    mean = fast_completion_loss(tiny_model, batch)
    assert math.isclose(fast_completion_loss(tiny_model, batch, num_items_in_batch=2 * n).item(), mean.item() / 2,
                        rel_tol=1e-5)


def test_causal_parts_look_through_peft(tiny_model):
    decoder, head, cap, scale = causal_parts(_lora(tiny_model))
    assert decoder is tiny_model.model
    assert head is tiny_model.get_output_embeddings()
    assert cap == tiny_model.config.final_logit_softcapping and scale == 1.0


def test_fast_loss_matches_a_model_that_scales_its_logits(tiny_tokenizer):
    from transformers import CohereConfig, CohereForCausalLM

    torch.manual_seed(0)
    model = CohereForCausalLM(CohereConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, logit_scale=0.25, pad_token_id=0))
    batch = _batch(len(tiny_tokenizer), seed=3)
    assert abs(fast_completion_loss(model, batch).item() - reference_completion_loss(model, batch).item()) < 1e-5


