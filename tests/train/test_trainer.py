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




def test_a_launched_cpu_process_neither_copies_the_model_nor_broadcasts_every_weight(tmp_path):
    # Under `accelerate launch` a CPU rank's device is cpu:0, and Tensor.to("cpu:0") copies: neither the Trainer
    # nor accelerate may move the model, and DDP's start-up broadcast of every frozen weight is left out.
    from accelerate.utils import DistributedDataParallelKwargs

    from studio.settings import StudioSettings
    from studio.train.config import build_sft_config
    from studio.train.trainer import without_init_sync

    args = build_sft_config(StudioSettings(), tmp_path, n_train=8, has_eval=False)
    assert args.device.type == "cpu" and args.place_model_on_device is False
    handler = without_init_sync(DistributedDataParallelKwargs(find_unused_parameters=True, bucket_cap_mb=5))
    assert handler.to_kwargs() == {"find_unused_parameters": True, "bucket_cap_mb": 5, "init_sync": False}
    assert without_init_sync(None).to_kwargs() == {"init_sync": False}
    weight = torch.ones(3)
    assert weight.to(torch.device("cpu", 0)).data_ptr() != weight.data_ptr()  # the copy this avoids


def test_the_first_step_gives_every_process_rank_0s_adapter(tmp_path):
    # One process of a gloo group: the broadcast must leave the adapter as it is and touch nothing frozen.
    import torch.distributed as dist

    from studio.train.trainer import broadcast_trainable

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    before = [p.detach().clone() for p in model.parameters()]
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        broadcast_trainable(model)
    finally:
        dist.destroy_process_group()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
