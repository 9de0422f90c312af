"""Checking a GGUF export against the studio's own answers: the record, its file, and answering from the GGUF.

"My exported model answers worse than in the UI" is nearly always a template or stop-token mismatch, or a
conversion that changed the weights. The check loads the written file back the way other tools do (transformers'
`gguf_file=`, its tokenizer included), answers the held-out prompts greedily through the run's template with the
same stop handling as Compare, and counts the answers equal to the studio's tuned ones. An f16 file should match
all or nearly all; q8_0 rounds the weights to 8 bits, so its share is reported as measured.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from studio.errors import ExportError, RunError
from studio.evaluate.scoring import score
from studio.examples import Example
from studio.runs import RunFolder, atomic_write


@dataclass
class ExportCheck:
    """How a GGUF export answered the held-out prompts, next to the studio's tuned answers and the references."""

    quant: str
    gguf_file: str
    n: int
    n_equal: int
    bleu_gguf: float
    bleu_studio: float
    studio_answers: str  # "comparison" (the run's saved Compare answers) or "generated" (answered for this check)
    seconds: float
    created: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def share_equal(self) -> float:
        """Fraction of answers identical to the studio's."""
        return self.n_equal / self.n if self.n else 0.0

    def summary(self) -> str:
        """One sentence for the UI and the CLI."""
        return (f"{self.quant} GGUF: {self.n_equal}/{self.n} answers equal the studio's tuned answers; "
                f"BLEU {self.bleu_gguf:.1f} from the GGUF vs {self.bleu_studio:.1f} in the studio.")


def build_check(quant: str, gguf_file: str, examples: list[Example], studio: list[str], gguf: list[str],
                studio_answers: str, seconds: float) -> ExportCheck:
    """Score both answer lists against the references and count the identical answers (pure)."""
    references = [e.output for e in examples]
    bleu_gguf, bleu_studio = score(references, gguf)[0].bleu, score(references, studio)[0].bleu
    rows = [{"instruction": e.instruction, "input": e.input, "reference": e.output, "studio": s, "gguf": g,
             "equal": s == g} for e, s, g in zip(examples, studio, gguf)]
    return ExportCheck(quant, gguf_file, len(rows), sum(r["equal"] for r in rows), bleu_gguf, bleu_studio,
                       studio_answers, round(seconds, 1), datetime.now().isoformat(timespec="seconds"), rows)


def load_checks(run_dir: Path) -> dict[str, ExportCheck]:
    """The saved checks of a run by quantisation ({} when none, or when the file cannot be read)."""
    path = RunFolder(run_dir).gguf_check_file
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return {quant: ExportCheck(**record) for quant, record in saved.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def save_check(run_dir: Path, check: ExportCheck) -> None:
    """Add or replace this quantisation's check in the run folder."""
    folder = RunFolder(run_dir)
    if not folder.exists():
        raise RunError(f"Run folder {run_dir.name} no longer exists; it may have been deleted.")
    checks = {quant: dataclasses.asdict(c) for quant, c in load_checks(run_dir).items()}
    checks[check.quant] = dataclasses.asdict(check)
    atomic_write(folder.gguf_check_file, json.dumps(checks, indent=2, ensure_ascii=False))


def load_gguf(path: Path) -> tuple[Any, Any]:
    """Model and tokenizer read back from a GGUF file by transformers, stopping at the file's own EOS token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.model.embedded import gguf_parsed_once
    from studio.model.head import fast_head

    try:
        with gguf_parsed_once():
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160].rstrip(".")
        raise ExportError(f"transformers could not read {path.name} back ({first}), so the export is broken; "
                          "export it again.") from None
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The config rebuilt from the file keeps its class defaults for the special ids; llama.cpp stops at the
    # tokenizer's EOS, and so does this check.
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return fast_head(model), tokenizer


def answer_from_gguf(path: Path, template_of: Callable[[Any], Any], examples: list[Example], gen: Any,
                     progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Answers of the GGUF model to the examples, through the run's template and stop strings (as Compare does)."""
    from studio.evaluate.generation import generate

    model, tokenizer = load_gguf(path)
    template = template_of(tokenizer)
    prompts = [template.prompt(e) for e in examples]
    return generate(model, tokenizer, prompts, gen, progress, stop_strings=tuple(template.stop_strings))
