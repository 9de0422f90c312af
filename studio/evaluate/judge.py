"""An LLM judge of a run's held-out answers, pairwise, as the SFT tutorials do it ("use another LLM to score the
fine-tuned responses").

For each held-out example the judge sees the instruction (and input), the reference answer and two answers, the
tuned model's and an opponent's (the base model's), and says A, B or tie. Every pair is asked in both orders so the
judge's taste for a position cancels out; `judge_record` turns the verdicts into a win rate with its interval and
the judge's self-agreement. The judge itself is any object with `ask(prompt) -> reply` (`judge_backends`: a local or
Hub chat model through transformers, an OpenAI-compatible endpoint, Hugging Face Inference Providers).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from studio.errors import RunError, StudioError
from studio.evaluate.comparison import Comparison, ComparisonRow, load_comparison
from studio.evaluate.judge_record import ORDERS, JudgeResult, JudgeStopped, Verdict, save_judge

PROMPT = """You are an impartial judge. Compare two answers to the same instruction. The reference answer shows \
what a good answer says. Decide which answer follows the instruction better and is more correct, helpful and \
complete; do not let the order of the answers or their length sway you.

### Instruction:
{instruction}{input}

### Reference answer:
{reference}

### Answer A:
{answer_a}

### Answer B:
{answer_b}

Reply with one word: A if Answer A is better, B if Answer B is better, or tie if they are equally good."""

Progress = Callable[[int, int], None]  # (pairs judged, pairs planned)


class Judge(Protocol):
    """What judging needs of a backend: a name to record, the backend's kind, how it answers, and `ask`."""

    name: str
    backend: str
    generation: dict

    def ask(self, prompt: str) -> str:
        """The judge's raw reply to one prompt."""
        ...


def judge_prompt(row: ComparisonRow, answer_a: str, answer_b: str) -> str:
    """The prompt for one example with `answer_a` shown first."""
    extra = f"\n\n### Input:\n{row.input}" if row.input.strip() else ""
    return PROMPT.format(instruction=row.instruction, input=extra, reference=row.reference,
                         answer_a=answer_a, answer_b=answer_b)


# ---- reading a verdict out of a free-form reply ---------------------------------------------------------------------
_THINKING = re.compile(r"<think>.*?(?:</think>|\Z)", re.S | re.I)  # a reasoning model's scratchpad
_BRACKETED = re.compile(r"\[\[\s*(A|B|C|(?i:tie))\s*\]\]")  # MT-Bench's [[A]] / [[B]] / [[C]] (C: a tie)
_FIRST_WORD = re.compile(r"^[\W_]*(?:(?i:answer|option|response)\s+)?([A-Za-z]+)\b")
_LABELLED = re.compile(r"(?i:verdict|winner|better answer|best answer|final answer|choice|answer is)\W{0,4}"
                       r"(?:(?i:answer|option)\s+)?(A|B|(?i:tie))\b")
_BETTER = re.compile(r"\b(?:(?i:answer|option|response)\s+)?(A|B)\s+(?i:is\s+(?:better|preferred|stronger|more))")
_TIE_WORDS = re.compile(r"\b(?:tie|equally good|equally (?:correct|helpful)|both (?:are )?equally)\b", re.I)
_TIE = {"tie", "equal", "neither", "both", "draw", "tied"}


def parse_verdict(reply: str) -> str | None:
    """'A', 'B' or 'tie' from a judge's reply ('A', '**B**', 'Verdict: [[A]]', 'Answer B is better.'), or None."""
    text = _THINKING.sub("", reply).strip()
    if found := _BRACKETED.findall(text):
        last = found[-1]
        return {"A": "A", "B": "B"}.get(last, "tie")
    if first := _FIRST_WORD.match(text):
        word = first.group(1)
        if word in ("A", "B") or (word in ("a", "b") and len(text.strip(" .!*\"'`")) == 1):
            return word.upper()
        if word.lower() in _TIE:
            return "tie"
    for pattern in (_LABELLED, _BETTER):
        if found := pattern.findall(text):
            return found[-1] if found[-1] in ("A", "B") else "tie"
    return "tie" if _TIE_WORDS.search(text) else None


# ---- judging ---------------------------------------------------------------------------------------------------------
def _answers(comparison: Comparison, opponent: str) -> list[tuple[ComparisonRow, str]]:
    if opponent == "baseline":  # the prompt-only baseline's answers sit on its record, aligned with the rows
        b = comparison.baseline
        ran = b is not None and b.ran and len(b.rows) == len(comparison.rows)
        rows = list(zip(comparison.rows, [r.answer for r in b.rows] if ran else [None] * len(comparison.rows)))
    else:
        rows = [(row, getattr(row, opponent, None)) for row in comparison.rows]
    if not rows or any(not isinstance(answer, str) for _, answer in rows):
        raise StudioError(f"This comparison has no {opponent} answers to judge the tuned ones against.")
    return rows


def judge_comparison(comparison: Comparison, judge: Judge, min_agreement: float, opponent: str = "base",
                     progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> JudgeResult:
    """Ask the judge about every held-out example in both orders; stops between pairs (JudgeStopped if none done)."""
    rows, verdicts, started = _answers(comparison, opponent), [], time.perf_counter()
    for index, (row, other) in enumerate(rows):
        if should_stop is not None and should_stop():
            break
        for order in ORDERS:
            a, b = (other, row.tuned) if order == "opponent_first" else (row.tuned, other)
            reply = judge.ask(judge_prompt(row, a, b))
            verdicts.append(Verdict(index, order, reply, parse_verdict(reply)))
        if progress is not None:
            progress(index + 1, len(rows))
    if not verdicts:
        raise JudgeStopped()
    return JudgeResult(judge=judge.name, backend=judge.backend, prompt=PROMPT, opponent=opponent, verdicts=verdicts,
                       min_agreement=min_agreement, planned=len(rows), partial=len(verdicts) < 2 * len(rows),
                       generation=dict(judge.generation), seconds=time.perf_counter() - started)


def judge_run(run_dir: Path, judge: Judge, min_agreement: float, opponent: str = "base",
              progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> JudgeResult:
    """Judge a run's saved comparison and save every verdict in its judge.json (the comparison is left as it is)."""
    comparison = load_comparison(run_dir)
    if comparison is None or not comparison.rows:
        raise RunError(f"Run {run_dir.name} has no compared answers yet; run the comparison before judging.")
    result = judge_comparison(comparison, judge, min_agreement, opponent, progress, should_stop)
    save_judge(run_dir, result)
    return result


def stopped_note(result: JudgeResult) -> str:
    """'Stopped after 5 of 16 pairs; the result covers those 5.' for a stopped judging, else ''."""
    if not result.partial:
        return ""
    done = len({v.index for v in result.verdicts})
    which = "that one" if done == 1 else f"those {done}"
    return f"Stopped after {done} of {result.planned} pairs; the result covers {which}."
