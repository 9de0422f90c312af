"""Chat: short multi-turn conversations with a helper whose answers (conversions, sums, word facts) are computed."""
from __future__ import annotations

import random
from collections.abc import Callable

from studio.data.samples._common import stratified_split, unique_by
from studio.data.samples.word_tasks import WORDS

SYSTEM_PROMPTS = (
    "You are Pip, a friendly assistant for unit conversions, quick sums, time spans and word questions. "
    "Answer briefly.",
    "You are a concise helper. Give short, exact answers.",
)
THANKS = (("Thanks!", "You're welcome! Ask me any time."), ("Great, thank you.", "Glad to help!"),
          ("That's all, thanks.", "Happy to help. Have a nice day!"))

# (unit, target unit, factor, offset, second target, factor, offset): value * factor + offset.
CONVERSIONS = (
    ("inches", "centimetres", 2.54, 0, "millimetres", 25.4, 0),
    ("feet", "metres", 0.3048, 0, "centimetres", 30.48, 0),
    ("miles", "kilometres", 1.609344, 0, "metres", 1609.344, 0),
    ("kilometres", "miles", 0.621371, 0, "metres", 1000, 0),
    ("kilograms", "pounds", 2.204623, 0, "grams", 1000, 0),
    ("pounds", "kilograms", 0.45359237, 0, "grams", 453.59237, 0),
    ("litres", "millilitres", 1000, 0, "cups", 4.226753, 0),
    ("degrees Celsius", "degrees Fahrenheit", 1.8, 32, "kelvins", 1, 273.15),
)
# (unit, target, factor, second target, factor) for time spans.
TIME_SPANS = (("hours", "minutes", 60, "seconds", 3600), ("days", "hours", 24, "minutes", 1440),
              ("weeks", "days", 7, "hours", 168), ("minutes", "seconds", 60, "milliseconds", 60000))
PER_KIND = 50
TEST_ROWS = 36


def _num(x: float) -> str:
    """A number as people write it: no trailing zeros, at most two decimals."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _convert(rng: random.Random) -> list[str]:
    """Turns of a unit-conversion chat: a conversion, then the same amount in a second unit."""
    src, dst, f, off, dst2, f2, off2 = rng.choice(CONVERSIONS)
    v = rng.randint(2, 120)
    ask = rng.choice(("How many {d} are in {v} {s}?", "Convert {v} {s} to {d}.", "What is {v} {s} in {d}?"))
    follow = rng.choice(("And in {d}?", "What is that in {d}?")).format(d=dst2)
    return [ask.format(v=v, s=src, d=dst), f"{v} {src} is {_num(v * f + off)} {dst}.",
            follow, f"{v} {src} is {_num(v * f2 + off2)} {dst2}."]


def _arithmetic(rng: random.Random) -> list[str]:
    """Turns of a running sum: an operation, one applied to its result, sometimes a third."""
    a, b, k, m = rng.randint(2, 60), rng.randint(2, 60), rng.randint(2, 9), rng.randint(1, 99)
    word, first = rng.choice((("plus", a + b), ("times", a * b), ("minus", a - b)))
    turns = [f"What is {a} {word} {b}?", f"{a} {word} {b} is {first}.",
             rng.choice(("Now multiply that by {k}.", "Multiply the result by {k}.")).format(k=k),
             f"{first} times {k} is {first * k}."]
    if rng.random() < 0.5:
        turns += [f"And subtract {m}?", f"{first * k} minus {m} is {first * k - m}."]
    return turns


def _letters(rng: random.Random) -> list[str]:
    """Turns about one word: its length, then its capitals or first letter."""
    w = rng.choice(WORDS)
    second = rng.choice((("How do I write it in capital letters?", f"In capital letters it is {w.upper()}."),
                         ("What is its first letter?", f'The first letter of "{w}" is "{w[0]}".')))
    return [rng.choice(('How many letters are in the word "{w}"?', 'How long is the word "{w}"?')).format(w=w),
            f'"{w}" has {len(w)} letters.', *second]


def _word_list(rng: random.Random) -> list[str]:
    """Turns about a list of words: sorted, then reversed or counted."""
    words = rng.sample(WORDS, rng.randint(3, 5))
    ordered = sorted(words)
    second = rng.choice((("Now reverse that order.", ", ".join(reversed(ordered)) + "."),
                         ("How many words is that?", f"That is {len(words)} words.")))
    return [f"Sort these words alphabetically: {', '.join(words)}.", ", ".join(ordered) + ".", *second]


def _time_span(rng: random.Random) -> list[str]:
    """Turns about a time span in two smaller units."""
    unit, dst, f, dst2, f2 = rng.choice(TIME_SPANS)
    v = rng.randint(2, 48)
    return [f"How many {dst} are in {v} {unit}?", f"{v} {unit} is {v * f} {dst}.",
            f"And how many {dst2} is that?", f"{v} {unit} is {v * f2} {dst2}."]


KINDS: dict[str, Callable[[random.Random], list[str]]] = {
    "convert": _convert, "arithmetic": _arithmetic, "time": _time_span, "letters": _letters, "word_list": _word_list,
}


def _conversation(kind: str, rng: random.Random) -> dict:
    """One {"messages": [...]} row: optional system message, 2-3 user turns, ending with the assistant."""
    turns = KINDS[kind](rng)
    if len(turns) < 6 and rng.random() < 0.3:
        turns += rng.choice(THANKS)
    messages = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < 0.5 else []
    messages += [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return {"messages": messages}


def _first_user(row: dict) -> str:
    """The first user message, the key that keeps test conversations out of training."""
    return next(m["content"] for m in row["messages"] if m["role"] == "user")


def build() -> tuple[list[dict], list[dict]]:
    """Build (train, test): 50 conversations per kind, none sharing an opening question, 36 held out."""
    rng = random.Random(99)
    items = []
    for kind in KINDS:
        drawn = unique_by((_conversation(kind, rng) for _ in range(4 * PER_KIND)), _first_user)
        items += [(kind, row) for row in drawn[:PER_KIND]]
    train, test = stratified_split(items, lambda item: item[0], TEST_ROWS, rng)
    return [row for _, row in train], [row for _, row in test]
