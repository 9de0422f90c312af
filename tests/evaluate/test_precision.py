"""The answer loss's arithmetic (studio.evaluate.precision): fp32 as the model reads, or a bf16 copy of its weights
that agrees with it closely, is made once, never shows outside the reading and never changes an answer."""
from __future__ import annotations

import pytest
import torch

from studio.data.templates import get_template
from studio.errors import SettingsError
from studio.evaluate import precision
from studio.evaluate.answer_loss import answer_loss
from studio.evaluate.precision import native_bf16, run_decoder, scoring_weights, wants_bf16
from studio.train.fused_head import head_cross_entropy_rows, weight_cross_entropy_rows
from studio.train.trainer import causal_parts
from tests.builders import tuned_model
from tests.evaluate.test_answer_loss import EXAMPLES
from tests.evaluate.test_shared_loss import TEMPLATE, UNLIKE, shared


def close_but_not_equal(got, expected, tolerance):
    """bf16 agrees with fp32 within `tolerance` nats per token, and was really read in bf16 (not the same numbers)."""
    gaps = [max(abs(a.base - b.base), abs(a.tuned - b.tuned)) for a, b in zip(got.examples, expected.examples)]
    assert [e.index for e in got.examples] == [e.index for e in expected.examples]
    assert 0 < max(gaps) < tolerance


def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    native_bf16.cache_clear()
    info = tmp_path / "cpuinfo"
    real = precision.Path

    def flags(text):
        info.write_text(text)
        monkeypatch.setattr(precision, "Path", lambda _: info)
        native_bf16.cache_clear()
        return native_bf16()

    try:
        assert flags("flags : fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
        assert flags("flags : fpu avx2 amx_bf16 amx_tile\n")
        assert not flags("flags : fpu avx2 avx512f avx512_vnni\n")
        assert not flags("flags : avx512_bf16x\n")  # a whole flag, not a prefix
        monkeypatch.setattr(precision, "Path", lambda _: tmp_path / "missing")
        native_bf16.cache_clear()
        assert not native_bf16()
    finally:
        monkeypatch.setattr(precision, "Path", real)
        native_bf16.cache_clear()


def test_auto_is_bf16_only_on_a_cpu_that_multiplies_it_and_only_for_fp32_weights(tiny_tokenizer, monkeypatch):
    model = tuned_model(tiny_tokenizer)
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    assert wants_bf16(model, "auto") and wants_bf16(model, "bf16") and not wants_bf16(model, "fp32")
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    assert not wants_bf16(model, "auto") and wants_bf16(model, "bf16")
    half = tuned_model(tiny_tokenizer).to(torch.float16)
    assert not wants_bf16(half, "bf16")  # reads with its own weights
    with pytest.raises(SettingsError, match="answer_loss_precision"):
        wants_bf16(model, "fp8")


def test_the_copy_is_bf16_shares_a_tied_head_once_and_none_for_fp32(tiny_tokenizer):
    model = tuned_model(tiny_tokenizer)
    assert scoring_weights(model, "fp32") is None
    weights = scoring_weights(model, "bf16")
    decoder, head, _, _ = causal_parts(model)
    assert {t.dtype for t in weights.decoder.values()} == {torch.bfloat16} and weights.head.dtype == torch.bfloat16
    assert set(weights.decoder) == {name for name, _ in decoder.named_parameters()}
    assert any("lora_A" in name for name in weights.decoder)  # the adapter too: tuned reads with it
    if head.weight is decoder.get_input_embeddings().weight:
        assert weights.head is weights.decoder["embed_tokens.weight"]


def test_reading_with_the_copy_leaves_the_model_as_it_was(tiny_tokenizer):
    model = tuned_model(tiny_tokenizer)
    decoder, _, _, _ = causal_parts(model)
    before = {name: p for name, p in decoder.named_parameters()}
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.inference_mode():
        plain = decoder(input_ids=ids).last_hidden_state
        copied = run_decoder(decoder, scoring_weights(model, "bf16"), input_ids=ids).last_hidden_state
        again = decoder(input_ids=ids).last_hidden_state
    assert copied.dtype == torch.bfloat16 and plain.dtype == again.dtype == torch.float32
    assert torch.equal(plain, again)
    assert all(p is before[name] and p.dtype == torch.float32 for name, p in decoder.named_parameters())


def test_a_bf16_head_is_close_to_the_fp32_one_with_its_softmax_in_fp32():
    torch.manual_seed(0)
    head = torch.nn.Linear(32, 700, bias=True).requires_grad_(False)
    hidden, targets = torch.randn(9, 32), torch.randint(0, 700, (9,))
    exact = head_cross_entropy_rows(hidden, head, targets, 30.0, 0.5, chunk_rows=128)
    low = weight_cross_entropy_rows(hidden.bfloat16(), head.weight.bfloat16(), head.bias.bfloat16(), targets, 30.0,
                                    0.5, chunk_rows=128)
    assert low.dtype == torch.float32
    assert 0 < (low - exact).abs().max() < 0.05


def test_answer_loss_in_bf16_agrees_with_fp32_and_says_which(tiny_tokenizer):
    model = tuned_model(tiny_tokenizer)
    template = get_template("alpaca")
    exact = answer_loss(model, tiny_tokenizer, template, EXAMPLES, 256)
    low = answer_loss(model, tiny_tokenizer, template, EXAMPLES, 256, precision="bf16")
    assert (exact.precision, low.precision) == ("fp32", "bf16")
    close_but_not_equal(low, exact, 0.05)
    assert low.to_dict()["precision"] == "bf16"


def test_compare_reads_the_loss_in_bf16_on_the_caches_and_its_answers_do_not_change(tiny_tokenizer):
    model = tuned_model(tiny_tokenizer)
    exact_result, cached, exact = shared(model, tiny_tokenizer, UNLIKE, template=TEMPLATE)
    low_result, low_cached, low = shared(model, tiny_tokenizer, UNLIKE, template=TEMPLATE, precision="bf16")
    assert low.precision == "bf16" and exact.precision == "fp32"
    assert low_cached == cached and cached  # the same rows read on the caches
    close_but_not_equal(low, exact, 0.05)
    assert [r.tuned for r in low_result.rows] == [r.tuned for r in exact_result.rows]
    assert [r.base for r in low_result.rows] == [r.base for r in exact_result.rows]
    afresh = answer_loss(model, tiny_tokenizer, get_template(TEMPLATE), UNLIKE, 256, precision="bf16")
    close_but_not_equal(low, afresh, 0.05)  # bf16 on an fp32 prompt cache, against bf16 from the first token
