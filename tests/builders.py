"""Hand-made run folders and comparisons that several test modules share (no model training needed)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from peft import LoraConfig, get_peft_model

from studio import runs
from studio.evaluate.comparison import Comparison, ComparisonRow, save_comparison
from studio.evaluate.scoring import Scores, score
from studio.examples import Example
from studio.runs import RunFolder
from studio.settings import StudioSettings
from studio.train import config as train_config
from studio.train import steps
from tests.tiny import make_tiny_model


def sample_comparison() -> Comparison:
    """A small hand-made comparison (no model needed)."""
    rows = [
        ComparisonRow("Uppercase <b>", "dog", "DOG", "dog dog", "DOG", 0.0, 100.0, 10.0, 100.0, False, True),
        ComparisonRow("Reverse", "", "god", "go", "dgo", 20.0, 5.0, 30.0, 20.0, False, False),
    ]
    return Comparison(rows=rows, base=Scores(2.1, 15.0, 0.0, 2), tuned=Scores(71.4, 80.2, 0.5, 2),
                      generation={"max_new_tokens": 8}, base_seconds=1.5, tuned_seconds=1.2, template="alpaca")


TRAIN = [Example(instruction="Uppercase the word.", input=w, output=w.upper())
         for w in ("apple", "banana", "cherry", "grape", "lemon", "mango")]
TEST = [Example(instruction="Reverse the letters.", input="kite", output="etik"),
        Example(instruction="Count the words | <b>bold</b>", input="a b", output="2")]


def _comparison(rows: list[Example]) -> Comparison:
    base, tuned = ["nope" for _ in rows], [rows[0].output, "3"]
    base_scores, base_each = score([e.output for e in rows], base)
    tuned_scores, tuned_each = score([e.output for e in rows], tuned)
    table = [ComparisonRow(e.instruction, e.input, e.output, b, t, bs.bleu, ts.bleu, bs.chrf, ts.chrf, bs.exact,
                           ts.exact) for e, b, t, bs, ts in zip(rows, base, tuned, base_each, tuned_each)]
    return Comparison(table, base_scores, tuned_scores, {"max_new_tokens": 8, "num_beams": 1, "do_sample": False},
                      1.0, 1.0, "alpaca")


def make_finished_run(root: Path, tokenizer, overrides: dict | None = None, compare: bool = True,
                      adapter: bool = True) -> tuple[Path, object]:
    """A completed run folder of the tiny model: splits, a non-trivial saved adapter, metrics, a comparison."""
    from peft import get_peft_model

    settings = StudioSettings.from_dict({"lora": {"r": 4, "alpha": 8}, **(overrides or {})})
    run_dir = runs.create_run(root, settings).path
    steps.write_splits(run_dir, SimpleNamespace(train=TRAIN, test=TEST, validation=[]))
    base = make_tiny_model(tokenizer)
    model = get_peft_model(base, train_config.build_lora_config(settings.lora, base))
    torch.manual_seed(1)
    with torch.no_grad():  # LoRA's B starts at zero; give it weights so the adapter changes the outputs
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    model.eval()
    if adapter:
        steps.save_adapter(model, tokenizer, run_dir)
    for step in range(1, 16):
        RunFolder(run_dir).append_metric({"step": step, "loss": 3.0 / step, "eval_loss": None, "elapsed": step})
    runs.update_run(run_dir, status="completed", step=15, total_steps=15, final_loss=0.2)
    if compare:
        save_comparison(run_dir, _comparison(TEST))
    return run_dir, model


def one_at_a_time(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """The reference: plain `model.generate` per prompt, no padding, greedy."""
    out = []
    with torch.inference_mode():
        for prompt in prompts:
            enc = tokenizer(prompt, return_tensors="pt")
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            out.append(tokenizer.decode(ids[0, enc.input_ids.shape[1]:], skip_special_tokens=True).strip())
    return out


def tuned_model(tokenizer, seed: int = 0):
    """The tiny model wrapped in a LoRA adapter whose B weights are non-zero, so tuned answers differ."""
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(make_tiny_model(tokenizer, seed), config)
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0.0, 2.0)
    return model
