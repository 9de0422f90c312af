"""Before / after: the same prompts answered with the adapter off (base) and on (tuned), scored against references."""
from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from studio.errors import DataError
from studio.evaluate.comparison import Comparison, ComparisonRow
from studio.evaluate.generation import Answer, end_of_sequence_ids, generate, generate_answers
from studio.evaluate.scoring import score
from studio.evaluate.significance import bootstrap_record, paired_bootstrap, win_tie_loss
from studio.examples import Example
from studio.settings import GenerationSettings


def _adapter_off(model: Any) -> contextlib.AbstractContextManager:
    # A PeftModel with its adapter disabled is exactly the base model; a plain model has nothing to disable.
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


def _timed_answers(model: Any, tokenizer: Any, prompts: list[str], gen: GenerationSettings, label: str,
                   progress: Callable[[str, int, int], None] | None, should_stop: Callable[[], bool] | None,
                   stop_strings: tuple[str, ...]) -> tuple[list[Answer], float]:
    step = (lambda done, total: progress(label, done, total)) if progress else None
    start = time.perf_counter()
    answers = generate_answers(model, tokenizer, prompts, gen, step, should_stop, stop_strings)
    return answers, time.perf_counter() - start


def compare(model: Any, tokenizer: Any, template: Any, examples: list[Example], gen: GenerationSettings,
            progress: Callable[[str, int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Comparison:
    """Answer the examples with the adapter off (base) and on (tuned), cut by the same stops, and score both."""
    prompts = [template.prompt(ex) for ex in examples]
    references = [ex.output for ex in examples]
    stops = tuple(template.stop_strings)
    with _adapter_off(model):
        base, base_seconds = _timed_answers(model, tokenizer, prompts, gen, "base", progress, should_stop, stops)
    tuned, tuned_seconds = _timed_answers(model, tokenizer, prompts, gen, "tuned", progress, should_stop, stops)
    base_text, tuned_text = [a.text for a in base], [a.text for a in tuned]
    base_scores, base_each = score(references, base_text)
    tuned_scores, tuned_each = score(references, tuned_text)
    rows = [
        ComparisonRow(
            instruction=ex.instruction, input=ex.input, reference=ex.output, base=b.text, tuned=t.text,
            base_bleu=bs.bleu, tuned_bleu=ts.bleu, base_chrf=bs.chrf, tuned_chrf=ts.chrf,
            base_exact=bs.exact, tuned_exact=ts.exact, base_raw=b.raw, tuned_raw=t.raw,
            base_rouge_l=bs.rouge_l, tuned_rouge_l=ts.rouge_l,
        )
        for ex, b, t, bs, ts in zip(examples, base, tuned, base_each, tuned_each)
    ]
    return Comparison(
        rows=rows, base=base_scores, tuned=tuned_scores, generation=dataclasses.asdict(gen),
        base_seconds=base_seconds, tuned_seconds=tuned_seconds, template=str(template.name),
        stop_strings=list(stops), eos_tokens=tokenizer.convert_ids_to_tokens(end_of_sequence_ids(model, tokenizer)),
        changes=paired_bootstrap(references, base_text, tuned_text, base_each, tuned_each),
        tally=win_tie_loss([s.bleu for s in base_each], [s.bleu for s in tuned_each]), bootstrap=bootstrap_record(),
    )


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
