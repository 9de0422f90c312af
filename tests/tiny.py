"""Tiny in-process model and tokenizer for quick tests (a few MB, built in about a second)."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

from studio.model.loading import LoadedModel

_CORPUS = [
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "### Instruction:\n### Input:\n### Response:\n### Output:\n### Question:\n### Answer:\n",
    "<|user|>\n<|assistant|>\n<|end|>\n<|system|>\n<|im_start|>user\n<|im_end|>\nassistant\n",
    "Uppercase the word. Reverse the letters. Sort the words alphabetically. Count the words. First word. Last word.",
    "apple banana cherry dog elephant fox grape house island jungle kite lemon mango night ocean piano queen river",
    "What is the capital of France? Paris is the capital. def add(a, b): return a + b",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,:;!?'\"()[]{}<>-_=+*/\\|@#$%^&~`",
]


WORDS = ['apple', 'banana', 'cherry', 'dog', 'elephant', 'fox', 'grape', 'house', 'island', 'jungle', 'kite', 'lemon', 'mango', 'night', 'ocean', 'piano', 'queen', 'river', 'stone', 'tiger', 'umbrella', 'violet', 'window', 'yak']


def write_uppercase_rows(path: Path, words: list[str]) -> Path:
    """A JSONL file of 'Uppercase the word.' rows, one per word (small data for job tests)."""
    rows = [{"instruction": "Uppercase the word.", "input": w, "output": w.upper()} for w in words]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return tok.to_str()


def make_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with Gemma-like special tokens and left padding (as Gemma ships)."""
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>",
    )
    tok.padding_side = "left"
    return tok


def make_tiny_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Gemma3ForCausalLM:
    """A 2-layer Gemma3 text model (hidden 32) in fp32 with tied embeddings, like the real one."""
    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
        sliding_window=64, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True,
    )
    model = Gemma3ForCausalLM(config).to(torch.float32)
    model.eval()
    return model


def tiny_loader(model_settings: object = None, token: str | None = None, **kwargs: object) -> LoadedModel:
    """The `model_loader` tests inject: a fresh tiny model (seeded, the same in every process) and its own tokenizer."""
    tokenizer = make_tiny_tokenizer()
    return LoadedModel(make_tiny_model(tokenizer), tokenizer, "tiny", "local", 0.0, False)


def save_tiny_model(folder: Path, tokenizer: PreTrainedTokenizerFast) -> Path:
    """The tiny model and its tokenizer saved as a local model folder."""
    make_tiny_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
