"""Hand-made run folders and comparisons that several test modules share (no model training needed)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from peft import LoraConfig, get_peft_model

from studio import runs
from studio.evaluate.change import Change, Tally
from studio.evaluate.comparison import Comparison, ComparisonRow, save_comparison
from studio.evaluate.scoring import Scores, score
from studio.evaluate.significance import bootstrap_record, paired_bootstrap, win_tie_loss
from studio.evaluate.timeline import Timeline, TimelinePoint
from studio.examples import Example
from studio.runs import RunFolder
from studio.settings import StudioSettings
from studio.train import config as train_config
from studio.train import steps
from tests.tiny import make_tiny_model


def sample_comparison() -> Comparison:
    """A small hand-made comparison (no model needed), with intervals, a tally, stop strings and raw answers."""
    rows = [
        ComparisonRow("Uppercase <b>", "dog", "DOG", "dog dog", "DOG", 0.0, 100.0, 10.0, 100.0, False, True,
                      base_raw="dog dog\n### Input:\ncat", tuned_raw="DOG<eos>", base_rouge_l=66.7,
                      tuned_rouge_l=100.0),
        ComparisonRow("Reverse", "", "god", "go", "dgo", 20.0, 5.0, 30.0, 20.0, False, False,
                      base_raw="go", tuned_raw="dgo<eos>", base_rouge_l=0.0, tuned_rouge_l=0.0),
    ]
    changes = {"bleu": Change(2.1, 71.4, 69.3, 40.5, 95.2), "chrf": Change(15.0, 80.2, 65.2, -10.0, 90.0),
               "rouge_l": Change(33.3, 50.0, 16.7, -66.7, 100.0), "exact_match": Change(0.0, 50.0, 50.0, 0.0, 100.0)}
    return Comparison(rows=rows, base=Scores(2.1, 15.0, 0.0, 2, 33.3), tuned=Scores(71.4, 80.2, 0.5, 2, 50.0),
                      generation={"max_new_tokens": 8}, base_seconds=1.5, tuned_seconds=1.2, template="alpaca",
                      stop_strings=["\n### "], eos_tokens=["<eos>"], changes=changes, tally=Tally(1, 0, 1),
                      bootstrap=bootstrap_record())


# comparison.json / comparison.jsonl as the studio wrote them before intervals, ROUGE-L and raw answers existed.
OLD_SUMMARY = {"base": {"bleu": 0.3, "chrf": 25.8, "exact_match": 0.0, "n": 2},
               "tuned": {"bleu": 43.7, "chrf": 72.8, "exact_match": 0.5, "n": 2},
               "generation": {"max_new_tokens": 16, "num_beams": 1}, "base_seconds": 3.0, "tuned_seconds": 2.0,
               "template": "instruction_output"}
OLD_ROWS = [{"instruction": "Uppercase the word.", "input": "dog", "reference": "DOG", "base_response": "dog ###",
             "tuned_response": "DOG", "base_bleu": 0.0, "tuned_bleu": 100.0, "base_chrf": 10.0, "tuned_chrf": 100.0,
             "base_exact": False, "tuned_exact": True},
            {"instruction": "Reverse.", "input": "ab", "reference": "ba", "base_response": "ab", "tuned_response": "b",
             "base_bleu": 0.0, "tuned_bleu": 0.0, "base_chrf": 20.0, "tuned_chrf": 30.0, "base_exact": False,
             "tuned_exact": False}]


def write_old_comparison(run_dir: Path) -> None:
    """A comparison in the old format, without the fields this version adds."""
    folder = RunFolder(run_dir)
    folder.comparison_file.write_text(json.dumps(OLD_SUMMARY), encoding="utf-8")
    folder.comparison_rows_file.write_text("".join(json.dumps(r) + "\n" for r in OLD_ROWS), encoding="utf-8")


TRAIN = [Example(instruction="Uppercase the word.", input=w, output=w.upper())
         for w in ("apple", "banana", "cherry", "grape", "lemon", "mango")]
TEST = [Example(instruction="Reverse the letters.", input="kite", output="etik"),
        Example(instruction="Count the words | <b>bold</b>", input="a b", output="2")]


def _comparison(rows: list[Example]) -> Comparison:
    base, tuned = ["nope" for _ in rows], [rows[0].output, "3"]
    base_scores, base_each = score([e.output for e in rows], base)
    tuned_scores, tuned_each = score([e.output for e in rows], tuned)
    table = [ComparisonRow(e.instruction, e.input, e.output, b, t, bs.bleu, ts.bleu, bs.chrf, ts.chrf, bs.exact,
                           ts.exact, b + "\n### Input:", t + "<eos>", bs.rouge_l, ts.rouge_l)
             for e, b, t, bs, ts in zip(rows, base, tuned, base_each, tuned_each)]
    return Comparison(table, base_scores, tuned_scores, {"max_new_tokens": 8, "num_beams": 1, "do_sample": False},
                      1.0, 1.0, "alpaca", ["\n### "], ["<eos>"],
                      paired_bootstrap([e.output for e in rows], base, tuned, base_each, tuned_each),
                      win_tie_loss([s.bleu for s in base_each], [s.bleu for s in tuned_each]), bootstrap_record())


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


def one_at_a_time(model, tokenizer, prompts: list[str], max_new_tokens: int, **kwargs) -> list[str]:
    """The reference: plain `model.generate` per prompt, no padding, greedy (`kwargs` go to generate)."""
    out = []
    with torch.inference_mode():
        for prompt in prompts:
            enc = tokenizer(prompt, return_tensors="pt")
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, **kwargs)
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


class ForcedTokenModel:
    """A model whose `generate` is forced to write `token_id` as the `step`-th new token (other calls delegate)."""

    def __init__(self, model, token_id: int, step: int):
        self.model, self.token_id, self.step = model, token_id, step

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def generate(self, **kwargs):
        """`model.generate` with a logits processor that forces the token at the chosen step."""
        from transformers import LogitsProcessor, LogitsProcessorList

        width, token_id, step = kwargs["input_ids"].shape[1], self.token_id, self.step

        class Force(LogitsProcessor):
            def __call__(self, input_ids, scores):
                if input_ids.shape[1] - width == step:
                    scores = torch.full_like(scores, -float("inf"))
                    scores[:, token_id] = 0.0
                return scores

        return self.model.generate(**kwargs, logits_processor=LogitsProcessorList([Force()]))


def trained_job(root: Path, data_file: Path, validation: float = 0.2, generation: dict | None = None, **train):
    """A completed TrainingJob of the tiny model (alpaca template, 8 steps of 2, 4 snapshots by default)."""
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.settings import apply_overrides
    from tests.tiny import tiny_loader

    settings = apply_overrides(StudioSettings(), {
        "data": {"dataset": str(data_file), "template": "alpaca", "max_length": 64, "test_fraction": 0.15,
                 "validation_fraction": validation, "max_test_examples": 4},
        "train": {"max_steps": 8, "batch_size": 2, "threads": 1, "eval_steps": 2 if validation else 0, **train},
        "generation": {"max_new_tokens": 4, "batch_size": 2, **(generation or {})},
    })
    job = TrainingJob(settings, root, queue=JobQueue(), model_loader=tiny_loader)
    job.start()
    assert job.join(timeout=120) and job.status == "completed", job.error
    return job


def _scores(bleu: float) -> Scores:
    return Scores(bleu=bleu, chrf=bleu, exact_match=0.0, n=2, rouge_l=bleu)


def sample_timeline(validation: bool = True) -> Timeline:
    """A scored timeline: test BLEU peaks at step 20, validation BLEU at 40/60 (tie), eval loss lowest at 60."""
    rows = [(0, 1.0, 2.0, None), (20, 90.0, 30.0, 1.2), (40, 50.0, 60.0, 1.1), (60, 40.0, 60.0, 0.9),
            (80, 30.0, 10.0, None)]
    return Timeline(
        examples=[{"instruction": "Up", "input": "dog", "reference": "DOG"},
                  {"instruction": "Up", "input": "", "reference": "X"}],
        points=[TimelinePoint(step, _scores(test), [f"a{step}", f"b{step}"], _scores(val) if validation else None,
                              loss if validation else None) for step, test, val, loss in rows],
        generation={"max_new_tokens": 4}, n_validation=3 if validation else 0, final_step=80)


def scored_comparison(examples: list[Example], base: list[str], tuned: list[str], **fields) -> Comparison:
    """A Comparison of given answers, scored as Compare scores one (corpus scores, intervals, tally; no model)."""
    refs = [e.output for e in examples]
    (bs, be), (ts, te) = score(refs, base), score(refs, tuned)
    rows = [ComparisonRow(e.instruction, e.input, e.output, b, t, x.bleu, y.bleu, x.chrf, y.chrf, x.exact, y.exact,
                          base_rouge_l=x.rouge_l, tuned_rouge_l=y.rouge_l)
            for e, b, t, x, y in zip(examples, base, tuned, be, te)]
    return Comparison(rows, bs, ts, fields.pop("generation", {"max_new_tokens": 8}), 1.0, 1.0, "alpaca",
                      ["\n### "], ["<eos>"], paired_bootstrap(refs, base, tuned, be, te),
                      win_tie_loss([s.bleu for s in be], [s.bleu for s in te]), bootstrap_record(), **fields)
