"""Studio scores: corpus BLEU and chrF (SacreBLEU), ROUGE-L and exact match, as a Hugging Face `evaluate` metric.

`evaluate.load("sacrebleu")` fetches its code from the Hub; this module lives in the repository and loads by path,
offline: `evaluate.load("studio/evaluate/metrics/studio_scores")`. It needs only `evaluate` and `sacrebleu`, so the
folder can be copied anywhere, and `evaluate.combine([...])` joins it with Hub metrics where the Hub is reachable.

- BLEU and chrF: SacreBLEU's defaults (`corpus_bleu`, `corpus_chrf`; `sentence_*` per example), 0-100.
- ROUGE-L: F-measure of the longest common subsequence of tokens, per example, 0-100; the corpus figure is the mean
  over examples (what `rouge-score`'s scorer gives per pair, averaged as LLaMA-Factory and the Hub `rouge` metric
  report it). Tokens as `rouge-score` makes them (lowercase, runs of letters and digits, no stemming) with two
  additions for text beyond ASCII: accented letters stay in their word, and each CJK character is a token.
- Exact match: the answer equals a reference once surrounding whitespace is stripped (a fraction, 0-1).
With several references per answer (every answer needs the same number, as SacreBLEU wants), BLEU and chrF use
them all, ROUGE-L takes the best and exact match any.
"""
from __future__ import annotations

import re

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = "Corpus BLEU and chrF (SacreBLEU), mean ROUGE-L F-measure and exact match, 0-100 (exact 0-1)."
_CITATION = """\
@inproceedings{post-2018-call, title = "A Call for Clarity in Reporting {BLEU} Scores", author = "Post, Matt",
  booktitle = "Proceedings of the Third Conference on Machine Translation", year = "2018", pages = "186--191"}
@inproceedings{lin-2004-rouge, title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
  author = "Lin, Chin-Yew", booktitle = "Text Summarization Branches Out", year = "2004", pages = "74--81"}
"""
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of answers (strings).
    references: one reference string per answer, or a list of references per answer (the same count for each).
    per_example: also return sentence-level scores per answer (default False).
Returns:
    bleu, chrf, rouge_l (0-100), exact_match (0-1), n; with per_example also sentence_bleu, sentence_chrf,
    sentence_rouge_l (lists, 0-100) and sentence_exact (list of bools).
Examples:
    >>> scores = evaluate.load("studio/evaluate/metrics/studio_scores")
    >>> scores.compute(predictions=["the cat sat"], references=["the cat sat"])["bleu"]
    100.00000000000004
"""
# CJK characters one token each; any other run of letters and digits one token (rouge-score's [a-z0-9]+ on ASCII).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")


def rouge_tokens(text: str) -> list[str]:
    """ROUGE tokens: lowercase runs of letters and digits (CJK characters one each)."""
    return _TOKEN.findall(text.lower())


def _lcs_length(a: list[str], b: list[str]) -> int:
    # One row of the dynamic programme at a time: O(len(a) * len(b)) time, O(len(b)) memory.
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (0-100) of one answer against one reference; 0 when either has no tokens."""
    pred, ref = rouge_tokens(prediction), rouge_tokens(reference)
    if not pred or not ref:
        return 0.0
    lcs = _lcs_length(pred, ref)
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 100 * 2 * precision * recall / (precision + recall) if lcs else 0.0


class StudioScores(evaluate.Metric):
    """BLEU, chrF, ROUGE-L and exact match of answers against references."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Sequence(datasets.Value("string"))}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            codebase_urls=["https://github.com/mjpost/sacrebleu",
                           "https://github.com/google-research/google-research/tree/master/rouge"],
            reference_urls=["https://aclanthology.org/W18-6319", "https://aclanthology.org/W04-1013"],
        )

    def _compute(self, predictions: list[str], references: list, per_example: bool = False) -> dict:
        refs = [[r] if isinstance(r, str) else list(r) for r in references]
        if len({len(r) for r in refs}) > 1:
            raise ValueError("Every answer needs the same number of references.")
        n = len(predictions)
        streams = [list(stream) for stream in zip(*refs)] if refs else []  # SacreBLEU wants one stream per reference
        result = {
            "bleu": sacrebleu.corpus_bleu(predictions, streams).score if n else 0.0,
            "chrf": sacrebleu.corpus_chrf(predictions, streams).score if n else 0.0,
            "n": n,
        }
        rouge = [max(rouge_l(p, r) for r in rs) for p, rs in zip(predictions, refs)]
        exact = [any(p.strip() == r.strip() for r in rs) for p, rs in zip(predictions, refs)]
        result["rouge_l"] = sum(rouge) / n if n else 0.0
        result["exact_match"] = sum(exact) / n if n else 0.0
        if per_example:
            result["sentence_bleu"] = [sacrebleu.sentence_bleu(p, rs).score for p, rs in zip(predictions, refs)]
            result["sentence_chrf"] = [sacrebleu.sentence_chrf(p, rs).score for p, rs in zip(predictions, refs)]
            result["sentence_rouge_l"], result["sentence_exact"] = rouge, exact
        return result
