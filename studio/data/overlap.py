"""Contamination guard: which held-out prompts repeat, or nearly repeat, a training prompt (pure, no model).

A held-out prompt the model was trained on measures memory, not generalisation, so the before/after headline leaves
such rows out by default (`generation.include_overlap` puts them back). Two prompts are compared on their text
without the system message (one shared by every row would make every pair look alike): earlier turns, then the
instruction and its input, normalised to words (case folded, punctuation and whitespace dropped). A long prompt is
compared on its first and last `MAX_WORDS` / 2 words (how it opens, and the turn being answered), read from its two
ends only: that bounds the work per row, so the check stays quick on the 17,000 chats of the ShareGPT export, and
two different questions above the same pasted traceback still read as different.

- exact: the normalised texts are equal (`prepare_splits` already drops training rows whose prompt is exactly a
  built-in sample's held-out prompt; this catches the rest, e.g. rows that differ only in case or punctuation).
- near: the Jaccard similarity of their word 3-gram shingle sets is at least `NEAR_THRESHOLD`. In a prompt of k
  shingles (k + 2 words), one word changed at the end leaves (k - 1) / (k + 1), one changed in the middle
  (k - 3) / (k + 3): from 11 words a changed last word is near, from 29 words any one changed word is. So templated
  prompts (the word tasks' "Convert the text to uppercase." + four random words, BookSQL questions that differ in a
  customer's name) stay clean, while a copied question with a word or two edited does not. Prompts of fewer than 3
  words are one shingle, so only exact repeats count.

Exact, not estimated (no MinHash): the held-out shingles go in an inverted index, each training prompt's shingle
set is intersected with it in C (`set & set`), and shared shingles are counted per held-out prompt with a
`Counter`, so the cost grows with the training text once, not with train x test pairs.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

from studio.examples import Example

SHINGLE_WORDS = 3
# Jaccard of word 3-gram sets at or above which two prompts are near-duplicates: the cut of the near-duplicate
# removal in Lee et al. 2022, "Deduplicating Training Data Makes Language Models Better" (there over MinHash
# estimates); the module docstring says what it means on short prompts.
NEAR_THRESHOLD = 0.8
MAX_WORDS = 100
# Characters per word read from each end of a long prompt to find its words there (generous: code has long "words").
_CHARS_PER_WORD = 12
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Overlap:
    """One held-out prompt that repeats a training prompt: which rows, why, and how alike (Jaccard, 1.0 if exact)."""

    test_index: int
    train_index: int
    reason: str  # "exact" or "near"
    score: float


def normalise(text: str) -> str:
    """The text's words, case folded, without punctuation, joined by single spaces."""
    return " ".join(_WORD.findall(text.casefold()))


def _raw_prompt(example: Example) -> str:
    """Earlier turns, the instruction and its input (no system message)."""
    return "\n".join([*(content for _, content in example.history), example.instruction, example.input])


def prompt_text(example: Example) -> str:
    """The whole prompt compared for exact repeats, normalised."""
    return normalise(_raw_prompt(example))


def prompt_words(example: Example, limit: int = MAX_WORDS) -> tuple[str, ...]:
    """The prompt's normalised words; past `limit`, its first and last `limit` / 2 (a long chat costs no more)."""
    raw, half = _raw_prompt(example), limit // 2
    chars = half * _CHARS_PER_WORD
    if len(raw) <= 2 * chars:
        words = _WORD.findall(raw.casefold())
        return tuple(words if len(words) <= limit else words[:half] + words[-half:])
    # Only the two ends are read; each window may cut a word at its inner edge.
    head, tail = _WORD.findall(raw[:chars].casefold())[:-1], _WORD.findall(raw[-chars:].casefold())[1:]
    return tuple(head[:half] + tail[-half:])


def shingles(words: Sequence[str], n: int = SHINGLE_WORDS) -> set[tuple[str, ...]]:
    """The set of word n-grams; a text shorter than n words is one shingle (empty text: none)."""
    if len(words) < n:
        return {tuple(words)} if words else set()
    return set(zip(*(words[i:] for i in range(n))))


def find_overlaps(train: Sequence[Example], test: Sequence[Example],
                  threshold: float = NEAR_THRESHOLD) -> list[Overlap]:
    """The held-out examples whose prompt repeats (exact) or nearly repeats (near) a training prompt, by test index.

    Each held-out example is reported once, with its most alike training example (the first of equals); "exact" when
    their whole normalised prompts are equal too.
    """
    test_words = [prompt_words(e) for e in test]
    best = _near_matches([prompt_words(e) for e in train], [shingles(w) for w in test_words], threshold)
    found = []
    for i, (j, score) in sorted(best.items()):
        exact = score == 1.0 and prompt_text(test[i]) == prompt_text(train[j])
        found.append(Overlap(i, j, "exact" if exact else "near", score))
    return found


def _near_matches(train_words: list[tuple[str, ...]], test_sets: list[set],
                  threshold: float) -> dict[int, tuple[int, float]]:
    """test index -> (training index, Jaccard) of its most alike training prompt at or above `threshold`."""
    postings: dict[tuple, list[int]] = {}
    for i, s in enumerate(test_sets):
        for shingle in s:
            postings.setdefault(shingle, []).append(i)
    universe = set(postings)
    best: dict[int, tuple[int, float]] = {}
    for j, words in enumerate(train_words):
        train_set = shingles(words)
        hits = train_set & universe  # set & set runs in C over the smaller one
        if not hits:
            continue
        for i, shared in Counter(chain.from_iterable(postings[s] for s in hits)).items():
            score = shared / (len(test_sets[i]) + len(train_set) - shared)
            if score >= threshold and score > best.get(i, (0, 0.0))[1]:
                best[i] = (j, score)
    return best


def overlap_flags(overlaps: Sequence[Overlap], n_test: int) -> list[str]:
    """Per held-out example: "exact", "near" or "" (clean)."""
    flags = [""] * n_test
    for o in overlaps:
        flags[o.test_index] = o.reason
    return flags


def overlap_line(n: int, included: bool = False) -> str:
    """'3 held-out prompts look like training prompts (left out of the headline).' ('' when none)."""
    if not n:
        return ""
    what = "1 held-out prompt looks like a training prompt" if n == 1 else \
        f"{n:,} held-out prompts look like training prompts"
    return f"{what} ({'counted in' if included else 'left out of'} the headline)."
