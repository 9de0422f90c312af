"""Evaluation contenders of `python -m bench`: answering held-out prompts with the base model.

- studio:   `studio.evaluate.generation.generate` (what Compare runs): batched left-padded greedy decoding, batches bucketed
            by prompt length, inference mode, torch threads matched to the idle cores.
- single:   one prompt at a time through `model.generate` (greedy), the usual inference helper of the tutorials.
- pipeline: the CodeAlpaca tutorial's `pipeline("text-generation", num_beams=5, early_stopping=True, batch_size=2)`.

Every contender answers the same prompts with the same max_new_tokens; generated tokens are counted the same way
for all (each answer re-tokenised without special tokens). The studio's and the single-prompt greedy answers must be
identical, which `run_eval` checks.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import torch

CONTENDERS = ("studio", "single", "pipeline")


def held_out_prompts(n: int, loader: Any = None) -> tuple[list[str], Any, Any]:
    """The first n test prompts of the default data (as Compare renders them), plus the loaded model."""
    from studio.data.templates import template_for
    from studio.model.loading import load_base_model
    from studio.settings import StudioSettings, apply_overrides
    from studio.train.steps import prepare_data

    settings = apply_overrides(StudioSettings(), {"data": {"max_test_examples": n}})
    splits = prepare_data(settings)
    loaded = loader(settings.model) if loader else load_base_model(settings.model, for_training=False)
    loaded.model.eval()
    d = settings.data
    template = template_for(d, loaded.tokenizer)
    return [template.prompt(e) for e in splits.test[:n]], loaded, settings.generation


def answer_studio(model: Any, tokenizer: Any, prompts: list[str], gen: Any) -> list[str]:
    """The studio's batched greedy generation."""
    from studio.evaluate.generation import generate

    return generate(model, tokenizer, prompts, gen)


def answer_single(model: Any, tokenizer: Any, prompts: list[str], gen: Any) -> list[str]:
    """One prompt at a time with plain `model.generate` (greedy), new text only."""
    from studio.data.formatting import prompt_ids

    answers = []
    for prompt in prompts:
        ids = torch.tensor([prompt_ids(tokenizer, prompt)])  # encoded as training saw it (BOS once)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=gen.max_new_tokens,
                             do_sample=False, num_beams=1, pad_token_id=tokenizer.pad_token_id,
                             temperature=None, top_p=None, top_k=None)
        answers.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return answers


def answer_pipeline(model: Any, tokenizer: Any, prompts: list[str], gen: Any) -> list[str]:
    """The CodeAlpaca tutorial's text-generation pipeline: beam search of 5, early stopping, batch 2."""
    from transformers import pipeline

    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    outs = pipe(prompts, max_new_tokens=gen.max_new_tokens, num_beams=5, early_stopping=True, do_sample=False,
                batch_size=2, return_full_text=False, pad_token_id=tokenizer.pad_token_id,
                temperature=None, top_p=None, top_k=None)
    return [o[0]["generated_text"].strip() for o in outs]


ANSWER = {"studio": answer_studio, "single": answer_single, "pipeline": answer_pipeline}


def run_eval(n_prompts: int, repeats: int, contenders: tuple[str, ...] = CONTENDERS,
             threads: int = 0, loader: Any = None, max_new_tokens: int = 0) -> dict[str, Any]:
    """Answer the prompts with each contender once per round for `repeats` rounds, the order reversed every other
    round; per-round seconds (bench/summary.py takes the ratios inside each round), medians, token counts, the check."""
    from bench.demo import load1, peak_rss_bytes
    from bench.rounds import round_order

    prompts, loaded, gen = held_out_prompts(n_prompts, loader)
    if max_new_tokens:
        gen = dataclasses.replace(gen, max_new_tokens=max_new_tokens)
    model, tokenizer = loaded.model, loaded.tokenizer
    if threads:
        torch.set_num_threads(threads)
    timings: dict[str, list[dict[str, float]]] = {c: [] for c in contenders}
    answers: dict[str, list[str]] = {}
    for round_ in range(repeats):
        for name in round_order(contenders, round_):
            load_start, start = load1(), time.perf_counter()
            answers[name] = ANSWER[name](model, tokenizer, prompts, gen)
            timings[name].append({"seconds": time.perf_counter() - start, "load": load_start})
    out: dict[str, Any] = {"prompts": len(prompts), "max_new_tokens": gen.max_new_tokens,
                           "batch_size": gen.batch_size, "peak_rss_bytes": peak_rss_bytes()}
    for name in contenders:
        seconds = statistics.median(t["seconds"] for t in timings[name])
        tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers[name])
        out[name] = {"seconds": seconds, "prompts_per_second": len(prompts) / seconds,
                     "generated_tokens": tokens, "tokens_per_second": tokens / seconds,
                     "rounds_seconds": [t["seconds"] for t in timings[name]],
                     "runs": [round(t["seconds"], 2) for t in timings[name]],
                     "loads": [t["load"] for t in timings[name]]}
    if "studio" in answers and "single" in answers:
        same = [a == b for a, b in zip(answers["studio"], answers["single"])]
        out["identical"] = sum(same)
        out["first_difference"] = next(
            ({"prompt": prompts[i], "studio": answers["studio"][i], "single": answers["single"][i]}
             for i, ok in enumerate(same) if not ok), None)
    out["sample"] = {name: answers[name][0] for name in answers}
    return out
