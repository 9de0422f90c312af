"""The before/after record (`Comparison`, one `ComparisonRow` per held-out example) and its files in a run folder.

Pure data and JSON: no torch, so reports and plots can import it cheaply. Fields added over time (raw answers,
intervals, the answer-length limit and which answers ran into it, the held-out answer loss) are optional: files
written before them load with None / empty values, and the renderers say "not recorded" instead of guessing.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from studio.errors import RunError
from studio.evaluate.answer_loss_record import AnswerLoss
from studio.evaluate.baseline_record import BaselineRecord
from studio.evaluate.change import Change, Tally, judged
from studio.evaluate.lengths import CutCount, EndedBy, ran_into_limit, recorded_cuts
from studio.evaluate.scoring import Scores
from studio.runs import RunFolder, atomic_write, update_run
from studio.settings import GenerationSettings


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
    # Everything each model wrote, before the cut (special tokens shown); "" in comparisons saved before it was kept.
    base_raw: str = ""
    tuned_raw: str = ""
    base_rouge_l: float | None = None
    tuned_rouge_l: float | None = None
    # Whether each answer ran into the token limit instead of stopping; None where not recorded (older files).
    base_cut: bool | None = None
    tuned_cut: bool | None = None
    # "exact" / "near" when the prompt repeats a training prompt (`studio.data.overlap`), "" when not; None: not checked.
    overlap: str | None = None

    @property
    def delta_bleu(self) -> float:
        """Sentence BLEU gained by tuning (negative when it got worse)."""
        return self.tuned_bleu - self.base_bleu


@dataclass
class Comparison:
    """Base vs tuned answers on the held-out examples, with scores and how they were generated.

    Fields after `template` are absent from comparisons saved by older versions: they load as None / empty.
    """

    rows: list[ComparisonRow]
    base: Scores
    tuned: Scores
    generation: dict
    base_seconds: float
    tuned_seconds: float
    template: str
    stop_strings: list[str] | None = None  # the template's stop strings, the same for both models
    eos_tokens: list[str] = field(default_factory=list)  # the end-of-sequence tokens, which always stop
    changes: dict[str, Change] = field(default_factory=dict)  # metric -> change with its confidence interval
    tally: Tally | None = None
    bootstrap: dict = field(default_factory=dict)  # how the intervals were computed
    partial: bool = False  # stopped before every example was answered: `rows` are the ones both models finished
    planned: int = 0  # how many examples the comparison set out to answer (0: not recorded, older files)
    adapter_step: int | None = None  # the chosen snapshot's step when it was the run's adapter; None: the final one
    answer_length: int | None = None  # the answer-length limit (max_new_tokens) both models answered under
    answer_length_reason: str = ""  # why that limit, one sentence (`lengths.AnswerLength.reason`)
    answer_loss: AnswerLoss | None = None  # the references' loss and perplexity, adapter off and on
    # Which compared examples repeat a training prompt: {"flags": one "exact"/"near"/"" per planned example, "rule"}.
    overlap: dict = field(default_factory=dict)
    baseline: BaselineRecord | None = None  # the base model prompted with k training examples (or why not)
    # Decoding steps each pass ran ({"base": n, "tuned": n}: every batch until its last answer ended); with the
    # seconds, the decoding rate this machine reached, so the baseline's budget needs no timing run of its own.
    decoding_steps: dict = field(default_factory=dict)

    @property
    def n_planned(self) -> int:
        """How many examples were to be compared (the rows themselves when not recorded)."""
        return max(self.planned, len(self.rows))

    @property
    def limit(self) -> int | None:
        """The answer-length limit in new tokens: the recorded one, else the generation settings' (None if neither)."""
        limit = self.answer_length or self.generation.get("max_new_tokens")
        return int(limit) if limit else None

    def generation_settings(self) -> GenerationSettings:
        """The settings the answers were generated with (length fitted, loop guard applied); unknown keys dropped."""
        known = {f.name for f in dataclasses.fields(GenerationSettings)}
        return GenerationSettings(**{k: v for k, v in self.generation.items() if k in known})

    def cut_count(self, who: str) -> CutCount | None:
        """How many of `who`'s ('base' or 'tuned') answers ran into the limit (and how many of those were looping);
        None when that was not recorded."""
        return recorded_cuts([getattr(row, f"{who}_cut") for row in self.rows],
                             [getattr(row, who) for row in self.rows], self.limit)


class Ended(Protocol):
    """What generation records of one answer (`generation.Answer`): new tokens used and what ended it."""

    n_tokens: int
    ended_by: EndedBy


def row_cuts(base: Ended, tuned: Ended, limit: int) -> dict[str, bool]:
    """`base_cut` / `tuned_cut` of one row for `ComparisonRow(**...)`: which answer ran into the limit."""
    return {"base_cut": ran_into_limit(base.n_tokens, limit, base.ended_by),
            "tuned_cut": ran_into_limit(tuned.n_tokens, limit, tuned.ended_by)}


def save_comparison(run_dir: Path, comparison: Comparison) -> None:
    """Write the comparison rows and summary into the run folder, and record BLEU in run.json."""
    lines = []
    for row in comparison.rows:
        record = dataclasses.asdict(row)
        record["base_response"], record["tuned_response"] = record.pop("base"), record.pop("tuned")
        lines.append(json.dumps(record, ensure_ascii=False))
    summary = {k: v for k, v in dataclasses.asdict(comparison).items() if k not in ("rows", "answer_loss", "baseline")}
    # Readers of the JSON get each verdict spelled out, by the minimum-effect rule the scorecard words.
    summary["changes"] = {name: judged(name, change).record() for name, change in comparison.changes.items()}
    if comparison.answer_loss is not None:
        summary["answer_loss"] = _answer_loss_record(comparison.answer_loss)
    if comparison.baseline is not None:
        summary["baseline"] = comparison.baseline.to_dict()
    folder = RunFolder(run_dir)
    atomic_write(folder.comparison_rows_file, "".join(line + "\n" for line in lines))
    atomic_write(folder.comparison_file, json.dumps(summary, indent=2, ensure_ascii=False))
    update_run(run_dir, bleu_base=comparison.base.bleu, bleu_tuned=comparison.tuned.bleu,
               exact_base=comparison.base.exact_match, exact_tuned=comparison.tuned.exact_match)


def _answer_loss_record(answer_loss: AnswerLoss) -> dict[str, Any]:
    record = answer_loss.to_dict()
    for name in ("loss", "perplexity"):  # the judging rule is applied on reading, not saved (see `Change`)
        record[name] = {k: v for k, v in record[name].items() if k not in ("minimum", "lower_is_better")}
    return record


def _known(cls: type, record: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in record.items() if k in names}


def _row_from_record(record: dict[str, Any]) -> ComparisonRow:
    record = dict(record)
    record["base"], record["tuned"] = record.pop("base_response"), record.pop("tuned_response")
    return ComparisonRow(**_known(ComparisonRow, record))


def _comparison_from(summary: dict[str, Any], rows: list[ComparisonRow]) -> Comparison:
    tally = summary.get("tally")
    return Comparison(
        rows=rows, base=Scores(**_known(Scores, summary["base"])), tuned=Scores(**_known(Scores, summary["tuned"])),
        generation=summary["generation"], base_seconds=summary["base_seconds"],
        tuned_seconds=summary["tuned_seconds"], template=summary["template"],
        stop_strings=summary.get("stop_strings"), eos_tokens=summary.get("eos_tokens", []),
        changes={k: Change(**_known(Change, v)) for k, v in summary.get("changes", {}).items()},
        tally=Tally(**_known(Tally, tally)) if tally else None, bootstrap=summary.get("bootstrap", {}),
        partial=bool(summary.get("partial", False)), planned=int(summary.get("planned") or 0),
        adapter_step=summary.get("adapter_step"), answer_length=summary.get("answer_length"),
        answer_length_reason=summary.get("answer_length_reason", ""),
        overlap=summary.get("overlap") or {},
        answer_loss=AnswerLoss.from_dict(summary["answer_loss"]) if summary.get("answer_loss") else None,
        baseline=BaselineRecord.from_dict(summary["baseline"]) if summary.get("baseline") else None,
        decoding_steps=summary.get("decoding_steps") or {},
    )


def load_comparison(run_dir: Path) -> Comparison | None:
    """The saved comparison of a run, or None if the run has not been compared yet (older files load too)."""
    folder = RunFolder(run_dir)
    summary_path, rows_path = folder.comparison_file, folder.comparison_rows_file
    if not summary_path.is_file() or not rows_path.is_file():
        return None
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        lines = rows_path.read_text(encoding="utf-8").splitlines()
        return _comparison_from(summary, [_row_from_record(json.loads(line)) for line in lines if line.strip()])
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise RunError(f"Run {run_dir.name} has an unreadable comparison; run the comparison again.") from None
