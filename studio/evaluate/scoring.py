"""Scoring answers against references through the studio's own `evaluate` metric (BLEU, chrF, ROUGE-L, exact match).

`evaluate.load("sacrebleu")` fetches its code from the Hub at run time; the studio's metric module lives in this
repository (`metrics/studio_scores/`, SacreBLEU inside) and is loaded by path, offline. `evaluate.load(path)` copies
the module into its modules cache (`~/.cache/huggingface/modules`) and makes a data folder under
`~/.cache/huggingface/metrics`; where those cannot be written the copies go to a temporary folder instead. Nothing is
ever written next to the module, so a read-only checkout works.
"""
from __future__ import annotations

import functools
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METRIC_PATH = Path(__file__).resolve().parent / "metrics" / "studio_scores"
_COMPUTE_LOCK = threading.Lock()  # an evaluate metric buffers its inputs on the instance: one compute at a time


@dataclass
class Scores:
    """Corpus scores of one model on the held-out examples (BLEU, chrF, ROUGE-L 0-100, exact match 0-1).

    `rouge_l` is None in comparisons saved before the studio measured it.
    """

    bleu: float
    chrf: float
    exact_match: float
    n: int
    rouge_l: float | None = None


@dataclass
class ExampleScore:
    """Sentence-level scores of one answer."""

    bleu: float
    chrf: float
    exact: bool
    rouge_l: float = 0.0


@functools.cache
def studio_metric() -> Any:
    """The studio's `evaluate` metric, loaded once by path (no network); a temp cache if ~/.cache is not writable."""
    import evaluate

    try:
        return evaluate.load(str(METRIC_PATH), keep_in_memory=True)
    except OSError:
        return _load_into(Path(tempfile.mkdtemp(prefix="studio-evaluate-")))


def _load_into(cache: Path) -> Any:
    # evaluate.load with its two caches moved: the module copy and the metric's (unused, in-memory) data folder.
    from evaluate.loading import evaluation_module_factory, import_main_class, init_dynamic_modules

    modules = init_dynamic_modules(hf_modules_cache=str(cache / "modules"))
    module = evaluation_module_factory(str(METRIC_PATH), dynamic_modules_path=modules)
    return import_main_class(module.module_path)(keep_in_memory=True, cache_dir=str(cache / "metrics"),
                                                 hash=module.hash)


def score(references: list[str], hypotheses: list[str]) -> tuple[Scores, list[ExampleScore]]:
    """Corpus BLEU/chrF/ROUGE-L/exact match plus per-example scores, through the studio metric (empty answers 0)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} answers.")
    if not references:
        return Scores(bleu=0.0, chrf=0.0, exact_match=0.0, n=0, rouge_l=0.0), []
    with _COMPUTE_LOCK:
        out = studio_metric().compute(predictions=hypotheses, references=references, per_example=True)
    per = [ExampleScore(bleu=b, chrf=c, exact=e, rouge_l=r) for b, c, e, r in
           zip(out["sentence_bleu"], out["sentence_chrf"], out["sentence_exact"], out["sentence_rouge_l"])]
    corpus = Scores(bleu=out["bleu"], chrf=out["chrf"], exact_match=out["exact_match"], n=out["n"],
                    rouge_l=out["rouge_l"])
    return corpus, per
