"""Generation and scoring: answer held-out prompts with the base and the tuned model, score both with SacreBLEU.

Batched greedy answers equal one-prompt-at-a-time `model.generate` answers. Measured on this CPU: left padding
alone changed no token (Gemma 3 270M, 16 Alpaca prompts of 49-54 tokens x 24 new tokens, batch 8, padded in any
order; tiny test model, 200 prompts), so padding is safe. Still, `plan_batches` first fills batches with prompts
of exactly the same token length (no padding at all, so nothing depends on how a kernel treats masked
positions) and batches the leftovers sorted by length, so they pad little.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from studio.errors import DataError, RunError, StudioError
from studio.examples import Example
from studio.runs import update_run
from studio.scoring import ExampleScore, Scores, score
from studio.settings import GenerationSettings

if TYPE_CHECKING:
    from studio.trainer import ThreadBalancer

# Scores live in studio.scoring; they are re-exported because callers think of them as evaluation results.
__all__ = [
    "Comparison", "ComparisonRow", "ExampleScore", "GenerationStopped", "Scores", "answer_both", "compare",
    "cut_at_stop", "generate", "generation_kwargs", "load_comparison", "plan_batches", "save_comparison", "score",
]

Progress = Callable[[int, int], None]


class GenerationStopped(StudioError):
    """The user stopped generation; `answers` holds what was finished (None where not yet answered)."""

    def __init__(self, answers: list[str | None]):
        done = sum(a is not None for a in answers)
        super().__init__(f"Generation was stopped after {done} of {len(answers)} answers.")
        self.answers = answers


def generation_kwargs(gen: GenerationSettings, pad_token_id: int) -> dict[str, Any]:
    """GenerationSettings -> `model.generate` keyword arguments (the one place this mapping lives)."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": gen.max_new_tokens, "num_beams": gen.num_beams, "do_sample": gen.do_sample,
        "repetition_penalty": gen.repetition_penalty, "pad_token_id": pad_token_id,
    }
    if gen.do_sample:
        kwargs.update(temperature=gen.temperature, top_p=gen.top_p, top_k=None)
    else:
        # Unset the model's own sampling defaults so greedy/beam decoding does not warn about them.
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if gen.num_beams > 1:
        kwargs["early_stopping"] = True
    return kwargs


class _StopOnStrings(StoppingCriteria):
    """Ends a row once its new text (the prompt excluded) contains a stop string."""

    def __init__(self, tokenizer: Any, stop_strings: tuple[str, ...], prompt_width: int):
        self.tokenizer, self.stop_strings, self.prompt_width = tokenizer, stop_strings, prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:], skip_special_tokens=True)
        done = [any(s in text for s in self.stop_strings) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def cut_at_stop(text: str, stop_strings: tuple[str, ...]) -> str:
    """Text up to the first stop string, stripped."""
    cut = min((i for i in (text.find(s) for s in stop_strings if s) if i >= 0), default=len(text))
    return text[:cut].strip()


def _encode(tokenizer: Any, prompt: str) -> list[int]:
    # A prompt rendered by a chat template already starts with BOS; adding another would differ from training.
    bos = tokenizer.bos_token
    return tokenizer(prompt, add_special_tokens=not (bos and prompt.startswith(bos)))["input_ids"]


def plan_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches: full exact-length buckets first, the rest sorted by length."""
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    batches, leftovers = [], []
    for n in sorted(by_length):
        group = by_length[n]
        full = len(group) - len(group) % batch_size
        batches += [group[i:i + batch_size] for i in range(0, full, batch_size)]
        leftovers += group[full:]
    batches += [leftovers[i:i + batch_size] for i in range(0, len(leftovers), batch_size)]
    return batches


def _left_pad(rows: list[list[int]], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    # Padding by hand leaves the shared tokenizer's padding_side alone (a training thread may be using it).
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[r, width - len(row):] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    # Training may leave dropout on; answers must be deterministic, and the caller's mode comes back after.
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class _RebalanceThreads(StoppingCriteria):
    """Never stops anything: every `every` new tokens it re-checks how many cores other processes leave idle."""

    def __init__(self, balancer: ThreadBalancer, every: int = 8):
        self.balancer, self.every, self.calls = balancer, every, 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.calls += 1
        if self.calls % self.every == 0:
            self.balancer.check()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


@contextlib.contextmanager
def _cpu_threads(model: Any) -> Iterator[ThreadBalancer | None]:
    # On a CPU shared with other processes, fewer torch threads than cores is often faster (see ThreadBalancer);
    # never more threads than the caller gave torch, and its count comes back afterwards (it is process-wide).
    if model.device.type != "cpu":
        yield None
        return
    from studio.trainer import ThreadBalancer  # lazily: it imports TRL, which evaluation alone does not need

    previous = torch.get_num_threads()
    balancer = ThreadBalancer(limit=previous)
    balancer.begin(sample_seconds=0.15)
    try:
        yield balancer
    finally:
        torch.set_num_threads(previous)


def _generate_batch(model: Any, tokenizer: Any, rows: list[list[int]], kwargs: dict[str, Any],
                    stop_strings: tuple[str, ...], balancer: ThreadBalancer | None = None) -> list[str]:
    batch = _left_pad(rows, kwargs["pad_token_id"], model.device)
    width = batch["input_ids"].shape[1]
    criteria = StoppingCriteriaList([_RebalanceThreads(balancer)] if balancer is not None else [])
    if stop_strings and kwargs["num_beams"] == 1:
        criteria.append(_StopOnStrings(tokenizer, stop_strings, width))
    out = model.generate(**batch, **kwargs, stopping_criteria=criteria or None)
    texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    return [cut_at_stop(t, stop_strings) for t in texts]


def generate(model: Any, tokenizer: Any, prompts: list[str], gen: GenerationSettings,
             progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
             stop_strings: tuple[str, ...] = ()) -> list[str]:
    """Answer each prompt (new text only, cut at the first stop string); raises GenerationStopped if stopped."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs = generation_kwargs(gen, pad_id)
    if model.generation_config.eos_token_id is None:
        kwargs["eos_token_id"] = tokenizer.eos_token_id
    encoded = [_encode(tokenizer, p) for p in prompts]
    answers: list[str | None] = [None] * len(prompts)
    done = 0
    # fork_rng keeps the seed local: sampling here must not reseed a training run sharing the process.
    with torch.random.fork_rng(devices=[]), torch.inference_mode(), _eval_mode(model), _cpu_threads(model) as threads:
        torch.manual_seed(gen.seed)
        for batch in plan_batches([len(e) for e in encoded], gen.batch_size):
            if should_stop is not None and should_stop():
                raise GenerationStopped(answers)
            texts = _generate_batch(model, tokenizer, [encoded[i] for i in batch], kwargs, stop_strings, threads)
            for i, text in zip(batch, texts):
                answers[i] = text
            done += len(batch)
            if progress is not None:
                progress(done, len(prompts))
    return [a or "" for a in answers]


@dataclass
class ComparisonRow:
    """One held-out example answered by both models."""

    instruction: str
    input: str
    reference: str
    base: str
    tuned: str
    base_bleu: float
    tuned_bleu: float
    base_chrf: float
    tuned_chrf: float
    base_exact: bool
    tuned_exact: bool

    @property
    def delta_bleu(self) -> float:
        """Sentence BLEU gained by tuning (negative when it got worse)."""
        return self.tuned_bleu - self.base_bleu


@dataclass
class Comparison:
    """Base vs tuned answers on the held-out examples, with scores and how they were generated."""

    rows: list[ComparisonRow]
    base: Scores
    tuned: Scores
    generation: dict
    base_seconds: float
    tuned_seconds: float
    template: str


def _adapter_off(model: Any) -> contextlib.AbstractContextManager:
    # A PeftModel with its adapter disabled is exactly the base model; a plain model has nothing to disable.
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


def _timed_answers(model: Any, tokenizer: Any, prompts: list[str], gen: GenerationSettings, label: str,
                   progress: Callable[[str, int, int], None] | None, should_stop: Callable[[], bool] | None,
                   stop_strings: tuple[str, ...]) -> tuple[list[str], float]:
    step = (lambda done, total: progress(label, done, total)) if progress else None
    start = time.perf_counter()
    answers = generate(model, tokenizer, prompts, gen, step, should_stop, stop_strings)
    return answers, time.perf_counter() - start


def compare(model: Any, tokenizer: Any, template: Any, examples: list[Example], gen: GenerationSettings,
            progress: Callable[[str, int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Comparison:
    """Answer the examples with the adapter off (base) and on (tuned), and score both against the references."""
    prompts = [template.prompt(ex) for ex in examples]
    references = [ex.output for ex in examples]
    stops = tuple(template.stop_strings)
    with _adapter_off(model):
        base, base_seconds = _timed_answers(model, tokenizer, prompts, gen, "base", progress, should_stop, stops)
    tuned, tuned_seconds = _timed_answers(model, tokenizer, prompts, gen, "tuned", progress, should_stop, stops)
    base_scores, base_each = score(references, base)
    tuned_scores, tuned_each = score(references, tuned)
    rows = [
        ComparisonRow(
            instruction=ex.instruction, input=ex.input, reference=ex.output, base=b, tuned=t,
            base_bleu=bs.bleu, tuned_bleu=ts.bleu, base_chrf=bs.chrf, tuned_chrf=ts.chrf,
            base_exact=bs.exact, tuned_exact=ts.exact,
        )
        for ex, b, t, bs, ts in zip(examples, base, tuned, base_each, tuned_each)
    ]
    return Comparison(rows=rows, base=base_scores, tuned=tuned_scores, generation=dataclasses.asdict(gen),
                      base_seconds=base_seconds, tuned_seconds=tuned_seconds, template=str(template.name))


def answer_both(model: Any, tokenizer: Any, template: Any, instruction: str, input: str,
                gen: GenerationSettings) -> tuple[str, str]:
    """The base and the tuned answer to one free-form instruction (for the prompt box)."""
    if not instruction.strip():
        raise DataError("Type an instruction for both models to answer.")
    prompt = [template.prompt(Example(instruction=instruction, output="", input=input))]
    stops = tuple(template.stop_strings)
    with _adapter_off(model):
        base = generate(model, tokenizer, prompt, gen, stop_strings=stops)[0]
    tuned = generate(model, tokenizer, prompt, gen, stop_strings=stops)[0]
    return base, tuned


def _atomic_write(path: Path, text: str) -> None:
    # Temp file + rename: a reader (the UI polling) never sees half a file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_comparison(run_dir: Path, comparison: Comparison) -> None:
    """Write comparison.jsonl (one row per example) and comparison.json (summary), and record BLEU in run.json."""
    lines = []
    for row in comparison.rows:
        record = dataclasses.asdict(row)
        record["base_response"], record["tuned_response"] = record.pop("base"), record.pop("tuned")
        lines.append(json.dumps(record, ensure_ascii=False))
    summary = {k: v for k, v in dataclasses.asdict(comparison).items() if k != "rows"}
    _atomic_write(run_dir / "comparison.jsonl", "".join(line + "\n" for line in lines))
    _atomic_write(run_dir / "comparison.json", json.dumps(summary, indent=2))
    update_run(run_dir, bleu_base=comparison.base.bleu, bleu_tuned=comparison.tuned.bleu,
               exact_base=comparison.base.exact_match, exact_tuned=comparison.tuned.exact_match)


def _row_from_record(record: dict[str, Any]) -> ComparisonRow:
    record = dict(record)
    record["base"], record["tuned"] = record.pop("base_response"), record.pop("tuned_response")
    names = {f.name for f in dataclasses.fields(ComparisonRow)}
    return ComparisonRow(**{k: v for k, v in record.items() if k in names})


def load_comparison(run_dir: Path) -> Comparison | None:
    """The saved comparison of a run, or None if the run has not been compared yet."""
    summary_path, rows_path = run_dir / "comparison.json", run_dir / "comparison.jsonl"
    if not summary_path.is_file() or not rows_path.is_file():
        return None
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        lines = rows_path.read_text(encoding="utf-8").splitlines()
        rows = [_row_from_record(json.loads(line)) for line in lines if line.strip()]
        return Comparison(
            rows=rows, base=Scores(**summary["base"]), tuned=Scores(**summary["tuned"]),
            generation=summary["generation"], base_seconds=summary["base_seconds"],
            tuned_seconds=summary["tuned_seconds"], template=summary["template"],
        )
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise RunError(f"Run {run_dir.name} has an unreadable comparison; run the comparison again.") from None
