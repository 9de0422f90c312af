"""The real embedded Gemma 3 270M: cache build and reload, a short LoRA run (the one tests/conftest.py shares), and
an exact base model behind the adapter.

Slow (the first run builds the fp32 cache in 1-2 minutes); deselect with `-m "not slow"`.
"""
from __future__ import annotations

import time

import pytest
import torch

from studio import runs
from studio.model import embedded
from studio.model import info as model_info_mod
from studio.train.steps import features_to_dataset
from studio.train.trainer import fast_completion_loss

pytestmark = pytest.mark.slow

PROMPTS = [
    "### Instruction:\nUppercase the word.\n\n### Input:\nriver\n\n### Response:\n",
    "### Instruction:\nReverse the letters.\n\n### Input:\nlemon\n\n### Response:\n",
    "### Instruction:\nCount the words.\n\n### Input:\nred fox runs\n\n### Response:\n",
]


@pytest.fixture(scope="module")
def warm_cache():
    """Build the fp32 cache if this machine lacks it, timing the cold path."""
    started = time.perf_counter()
    embedded.ensure_embedded_cache()
    return time.perf_counter() - started


def test_embedded_model_loads_from_the_fp32_cache(warm_cache, embedded_base):
    loaded = embedded_base  # tests/conftest.py: loaded once for the tests that only read the base model
    print(f"\ncache build/check {warm_cache:.1f} s, warm load {loaded.load_seconds:.1f} s")
    assert loaded.source == "embedded" and loaded.from_cache
    assert loaded.load_seconds < 20  # ~4 s on an idle 2-core machine; generous for a busy CI box
    info = model_info_mod.model_info(loaded.model)
    assert info.architecture == "Gemma3ForCausalLM" and info.vocab_size == 262_144
    assert 260e6 < info.n_params < 280e6 and info.memory_bytes < 1.2e9
    assert loaded.model.dtype == torch.float32
    tok = loaded.tokenizer
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<eos>", "<pad>", "<bos>")
    assert tok("Hello world")["input_ids"] == [2, 9259, 1902]
    assert model_info_mod.default_target_modules(loaded.model) == [
        "down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def _greedy(model, tokenizer, prompt: str) -> list[int]:
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                         temperature=None, top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


def _loss_on(model, tokenizer, template, examples) -> float:
    from studio.data.formatting import tokenize_dataset

    ds = features_to_dataset(tokenize_dataset(tokenizer, template, examples, 128))
    width = max(ds["length"])
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in ds["input_ids"]])
    labels = torch.tensor([r + [-100] * (width - len(r)) for r in ds["labels"]])
    mask = torch.tensor([[1] * n + [0] * (width - n) for n in ds["length"]])
    with torch.no_grad():
        return fast_completion_loss(model, {"input_ids": ids, "attention_mask": mask, "labels": labels}).item()


def test_a_short_lora_run_learns_and_leaves_the_base_model_exact(warm_cache, first_real_run, embedded_base):
    job = first_real_run  # tests/conftest.py: the default settings, cut short
    losses = [r["loss"] for r in job.history() if r.get("loss") is not None]
    assert len(losses) == job.settings.train.max_steps and min(losses[-3:]) < max(losses[:3])
    assert runs.read_run(job.root, job.run_id).has_adapter

    model, tok = job.model, job.tokenizer
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # B starts at zero; training moved it

    sample = job.splits.train[:8]
    tuned_loss = _loss_on(model, tok, job.template, sample)
    with model.disable_adapter():
        base_loss = _loss_on(model, tok, job.template, sample)
        behind_adapter = [_greedy(model, tok, p) for p in PROMPTS]
    assert tuned_loss < base_loss

    fresh = embedded_base  # loaded apart from the run's model and never wrapped in an adapter
    assert fresh.model is not model.get_base_model()
    assert behind_adapter == [_greedy(fresh.model, fresh.tokenizer, p) for p in PROMPTS]
