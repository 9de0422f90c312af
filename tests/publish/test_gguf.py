"""GGUF writing: transformers reads the file back to the same model (f16) or close to it (q8_0), for every supported
architecture, with llama.cpp's conventions in the file itself; anything else is refused in one sentence."""
from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from studio.errors import ExportError
from studio.publish.gguf import architecture_fields, tokenizer_fields, write_gguf
from tests.tiny import WORDS, make_tiny_model

PROMPTS = ["### Instruction:\nUppercase the word.\n\n### Input:\napple\n\n### Output:\n",
           "### Instruction:\nSort the words alphabetically.\n\n### Input:\nkite lemon dog\n\n### Output:\n"]


def tiny_of(kind: str, tokenizer):
    """A tiny model of each supported family (Gemma 3 tied, Llama untied with rotary rows, Qwen2 with biases)."""
    if kind == "gemma3":
        return make_tiny_model(tokenizer)
    shape = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                 bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    model = (LlamaForCausalLM(LlamaConfig(**shape)) if kind == "llama" else Qwen2ForCausalLM(Qwen2Config(**shape)))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "norm" in name:  # non-trivial biases and norms, so their layout is tested
                param.normal_(1.0 if "norm" in name else 0.0, 0.3)
    return model.eval()


def write(model, tokenizer, folder, quant="f16"):
    metadata = architecture_fields(model.config) + tokenizer_fields(tokenizer)
    return write_gguf(model, metadata, folder / f"model-{quant}.gguf", quant, "tiny")


def read_back(path):
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def greedy(model, tokenizer, prompt, n=8):
    ids = tokenizer([prompt], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=None)
    return out[0, ids.shape[1]:].tolist()


@pytest.mark.parametrize("kind", ["gemma3", "llama", "qwen2"])
def test_f16_reads_back_as_the_same_model(kind, tiny_tokenizer, tmp_path):
    model = tiny_of(kind, tiny_tokenizer)
    back, tokenizer = read_back(write(model, tiny_tokenizer, tmp_path))
    assert type(back) is type(model)
    text = " ".join(WORDS) + " <eos> Hello,  World!\n"
    assert tokenizer(text)["input_ids"] == tiny_tokenizer(text)["input_ids"]
    assert tokenizer.decode(tiny_tokenizer(text)["input_ids"]) == tiny_tokenizer.decode(tiny_tokenizer(text)["input_ids"])
    ids = tiny_tokenizer(PROMPTS, return_tensors="pt", padding=True)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, model(ids).logits, atol=2e-3, rtol=1e-2)  # f16 rounding
    for prompt in PROMPTS:
        assert greedy(back, tokenizer, prompt) == greedy(model, tiny_tokenizer, prompt)


@pytest.mark.parametrize("kind", ["gemma3", "llama"])
def test_q8_0_is_smaller_loads_and_answers(kind, tiny_tokenizer, tmp_path):
    model = tiny_of(kind, tiny_tokenizer)
    f16, q8 = write(model, tiny_tokenizer, tmp_path, "f16"), write(model, tiny_tokenizer, tmp_path, "q8_0")
    assert q8.stat().st_size < 0.75 * f16.stat().st_size
    back, tokenizer = read_back(q8)
    ids = tiny_tokenizer(PROMPTS[:1], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, model(ids).logits, atol=5e-2, rtol=5e-2)
    assert len(greedy(back, tokenizer, PROMPTS[0])) == 8


def test_the_file_follows_llama_cpp_conventions(tiny_tokenizer, tmp_path):
    model = make_tiny_model(tiny_tokenizer)
    with torch.no_grad():
        model.model.norm.weight.normal_(0.0, 0.5)
    reader = gguf.GGUFReader(str(write(model, tiny_tokenizer, tmp_path, "q8_0")))
    tensors = {t.name: t for t in reader.tensors}
    assert "output.weight" not in tensors  # tied head: readers tie it to token_embd again
    norm = tensors["output_norm.weight"]
    assert norm.tensor_type == gguf.GGMLQuantizationType.F32  # Gemma stores 1 + w for x * (1 + w)
    np.testing.assert_allclose(np.asarray(norm.data), model.model.norm.weight.detach().numpy() + 1.0, rtol=1e-6)
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    assert reader.fields["general.architecture"].contents() == "gemma3"
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert reader.fields["gemma3.attention.head_count_kv"].contents() == model.config.num_key_value_heads


def test_llama_q_and_k_rows_are_regrouped_for_rotary(tiny_tokenizer, tmp_path):
    model = tiny_of("llama", tiny_tokenizer)
    reader = gguf.GGUFReader(str(write(model, tiny_tokenizer, tmp_path)))
    stored = {t.name: np.asarray(t.data) for t in reader.tensors}
    q = model.model.layers[0].self_attn.q_proj.weight.detach().numpy()
    heads, dim = model.config.num_attention_heads, q.shape[0] // model.config.num_attention_heads
    expected = q.reshape(heads, 2, dim // 2, -1).swapaxes(1, 2).reshape(q.shape)  # llama.cpp's permute
    np.testing.assert_allclose(stored["blk.0.attn_q.weight"].astype(np.float32), expected, atol=1e-3)
    np.testing.assert_allclose(stored["blk.0.attn_v.weight"].astype(np.float32),
                               model.model.layers[0].self_attn.v_proj.weight.detach().numpy(), atol=1e-3)


def test_an_unsupported_architecture_is_one_sentence(tiny_tokenizer, tmp_path):
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tiny_tokenizer), n_embd=32, n_layer=1, n_head=2))
    with pytest.raises(ExportError) as caught:
        write(model, tiny_tokenizer, tmp_path)
    message = str(caught.value)
    assert message == ("GGUF export works for Gemma 3, Llama or Qwen2 models, not gpt2; download the "
                       "merged model instead.")
    assert not list(tmp_path.iterdir())


def test_a_tokenizer_that_is_not_byte_level_bpe_is_one_sentence(tiny_tokenizer):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    word_level = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ExportError, match="needs a byte-level BPE tokenizer"):
        tokenizer_fields(PreTrainedTokenizerFast(tokenizer_object=word_level, unk_token="<unk>"))
