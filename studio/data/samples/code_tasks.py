"""Code tasks: CodeAlpaca-style rows, an instruction (sometimes with an example input) -> a short Python function."""
from __future__ import annotations

import calendar
import math
import operator
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from typing import Any

from studio.data.samples._common import stratified_split, unique_by

# Parameter names each family may use, so outputs vary in more than the constant.
ARG_NAMES: dict[str, tuple[tuple[str, ...], ...]] = {
    "num": (("n",), ("x",), ("value",), ("num",)),
    "pair": (("a", "b"), ("x", "y"), ("first", "second")),
    "dims": (("width", "height"), ("w", "h")),
    "year": (("year",), ("y",)),
    "text": (("s",), ("text",), ("word",)),
    "list": (("nums",), ("values",), ("numbers",), ("items",)),
}


@dataclass(frozen=True)
class Family:
    """One kind of function: what it does, its code, and a reference implementation to check the code against."""

    task: str                      # verb phrase after "that ...", may use {k}
    names: tuple[str, str]         # function name templates, may use {k}
    body: str                      # function body, uses {a} (and {b}) for parameters and {k} for the constant
    params: str                    # key into ARG_NAMES
    examples: tuple[tuple, ...]    # argument tuples the behaviour is checked on
    ref: Callable[..., Any]        # ref(k, *args) -> expected result, written independently of `body`
    ks: tuple = (None,)            # constants the family varies over


FAMILIES: tuple[Family, ...] = (
    Family("multiplies a number by {k}", ("times_{k}", "multiply_by_{k}"), "return {a} * {k}", "num",
           ((6,),), lambda k, x: x * k, tuple(range(2, 13))),
    Family("adds {k} to a number", ("add_{k}", "plus_{k}"), "return {a} + {k}", "num",
           ((10,),), lambda k, x: x + k, tuple(range(1, 21))),
    Family("raises a number to the power of {k}", ("power_{k}", "to_the_{k}"), "return {a} ** {k}", "num",
           ((3,),), lambda k, x: x**k, (2, 3, 4, 5)),
    Family("returns True if a number is divisible by {k}", ("is_divisible_by_{k}", "divides_by_{k}"),
           "return {a} % {k} == 0", "num", ((12,), (35,)), lambda k, x: x // k * k == x, tuple(range(2, 10))),
    Family("returns True if a number is greater than {k}", ("is_greater_than_{k}", "above_{k}"),
           "return {a} > {k}", "num", ((5,), (25,)), lambda k, x: x > k, tuple(range(1, 21))),
    Family("limits a number to the range 0 to {k}", ("clamp_{k}", "cap_at_{k}"), "return max(0, min({a}, {k}))",
           "num", ((-3,), (7,), (300,)), lambda k, x: sorted((0, x, k))[1], (10, 20, 50, 100, 255)),
    Family("converts a temperature from Celsius to Fahrenheit", ("celsius_to_fahrenheit", "c_to_f"),
           "return {a} * 9 / 5 + 32", "num", ((100,), (0,)), lambda k, c: float(Fraction(9, 5) * c + 32)),
    Family("returns True if a number is even", ("is_even", "even"), "return {a} % 2 == 0", "num",
           ((4,), (7,)), lambda k, x: not x & 1),
    Family("returns 1 for a positive number, -1 for a negative number and 0 for zero", ("sign", "sign_of"),
           "if {a} > 0:\n        return 1\n    if {a} < 0:\n        return -1\n    return 0", "num",
           ((5,), (-2,), (0,)), lambda k, x: (x > 0) - (x < 0)),
    Family("returns the factorial of a non-negative integer", ("factorial", "fact"),
           "result = 1\n    for i in range(2, {a} + 1):\n        result *= i\n    return result", "num",
           ((5,), (0,)), lambda k, n: math.factorial(n)),
    Family("returns the absolute difference of two numbers", ("abs_diff", "distance"), "return abs({a} - {b})",
           "pair", ((3, 10), (8, 2)), lambda k, x, y: max(x, y) - min(x, y)),
    Family("returns the larger of two numbers", ("larger", "max_of_two"), "return {a} if {a} > {b} else {b}",
           "pair", ((3, 9), (8, 2)), lambda k, x, y: max(x, y)),
    Family("returns the average of two numbers", ("average_of_two", "midpoint"), "return ({a} + {b}) / 2",
           "pair", ((3, 8),), lambda k, x, y: statistics.fmean([x, y])),
    Family("returns the area of a rectangle", ("rectangle_area", "area"), "return {a} * {b}", "dims",
           ((3, 4),), lambda k, w, h: math.prod((w, h))),
    Family("returns True if a year is a leap year", ("is_leap_year", "leap_year"),
           "return {a} % 4 == 0 and ({a} % 100 != 0 or {a} % 400 == 0)", "year",
           ((2024,), (1900,), (2000,), (2023,)), lambda k, y: calendar.isleap(y)),
    Family("reverses a string", ("reverse_string", "reverse_text"), "return {a}[::-1]", "text",
           (("hello",),), lambda k, s: "".join(reversed(s))),
    Family("counts the vowels in a string", ("count_vowels", "vowel_count"),
           'return sum(1 for ch in {a}.lower() if ch in "aeiou")', "text", (("Banana",),),
           lambda k, s: len([c for c in s.lower() if c in "aeiou"])),
    Family("repeats a string {k} times", ("repeat_{k}", "repeat_text_{k}"), "return {a} * {k}", "text",
           (("ab",),), lambda k, s: "".join([s] * k), (2, 3, 4, 5)),
    Family("counts how many times the letter {k!r} appears in a string", ("count_{k}", "count_letter_{k}"),
           'return {a}.count("{k}")', "text", (("banana tree stone",),),
           lambda k, s: sum(c == k for c in s), ("a", "e", "o", "s", "t")),
    Family("returns True if a string starts with {k!r}", ("starts_with_{k}", "has_prefix_{k}"),
           'return {a}.startswith("{k}")', "text", (("return",), ("undo",), ("inside",)),
           lambda k, s: s[:len(k)] == k, ("pre", "un", "re", "de", "in")),
    Family("returns True if a word reads the same backwards", ("is_palindrome", "palindrome"),
           "return {a} == {a}[::-1]", "text", (("level",), ("house",)), lambda k, s: list(s) == list(reversed(s))),
    Family("returns a string in uppercase followed by an exclamation mark", ("shout", "exclaim"),
           'return {a}.upper() + "!"', "text", (("hi there",),), lambda k, s: f"{s.upper()}!"),
    Family("counts the words in a sentence", ("count_words", "word_count"), "return len({a}.split())", "text",
           (("the quick brown fox",),), lambda k, s: s.count(" ") + 1),
    Family("returns the first letter of every word in a sentence, in uppercase", ("initials", "acronym"),
           'return "".join(w[0].upper() for w in {a}.split())', "text", (("portable network graphics",),),
           lambda k, s: "".join(w[:1] for w in s.title().split())),
    Family("returns the sum of a list of numbers", ("sum_list", "total"), "return sum({a})", "list",
           (([1, 2, 3, 10],),), lambda k, xs: reduce(operator.add, xs)),
    Family("returns the average of a non-empty list of numbers", ("average", "mean"),
           "return sum({a}) / len({a})", "list", (([2, 4, 9],),), lambda k, xs: statistics.fmean(xs)),
    Family("returns the even numbers from a list", ("evens", "keep_even"), "return [x for x in {a} if x % 2 == 0]",
           "list", (([1, 2, 3, 4, 6],),), lambda k, xs: [x for x in xs if not x & 1]),
    Family("returns the numbers in a list that are greater than {k}", ("filter_above_{k}", "greater_than_{k}"),
           "return [x for x in {a} if x > {k}]", "list", (([1, 5, 8, 12],),),
           lambda k, xs: list(filter(lambda x: x > k, xs)), tuple(range(1, 11))),
    Family("multiplies every number in a list by {k}", ("scale_by_{k}", "multiply_all_by_{k}"),
           "return [x * {k} for x in {a}]", "list", (([1, 2, 3],),), lambda k, xs: [k * x for x in xs],
           tuple(range(2, 11))),
    Family("removes duplicates from a list while keeping the original order", ("unique", "dedupe"),
           "return list(dict.fromkeys({a}))", "list", (([3, 1, 3, 2, 1],),),
           lambda k, xs: sorted(set(xs), key=xs.index)),
    Family("returns the largest number in a list", ("largest", "max_value"), "return max({a})", "list",
           (([4, 9, 2],),), lambda k, xs: sorted(xs)[-1]),
    Family("counts how many times {k} appears in a list", ("count_{k}", "occurrences_of_{k}"),
           "return {a}.count({k})", "list", (([1, 2, 2, 3, 2, 5],),), lambda k, xs: len([x for x in xs if x == k]),
           (1, 2, 3, 4, 5)),
    Family("returns the last item of a list", ("last", "last_item"), "return {a}[-1]", "list",
           (([4, 5, 6],),), lambda k, xs: xs[len(xs) - 1]),
)

PHRASINGS = (
    "Write a Python function {name} that {task}.",
    "Create a function called {name} that {task}.",
    "Define a Python function named {name} that {task}.",
)
ROWS_PER_FAMILY = 6
TEST_ROWS = 40
WITH_INPUT_SHARE = 0.4  # CodeAlpaca has an input on about 40% of its rows


@dataclass(frozen=True)
class CodeCase:
    """A row plus what its function must do: `name(*args) == expected` for every check."""

    row: dict[str, str]
    name: str
    checks: tuple[tuple[tuple, Any], ...]


def _case(family: Family, rng: random.Random) -> CodeCase:
    """One random variation of a family: constant, function name, parameter names, phrasing, input or not."""
    k = rng.choice(family.ks)
    name = rng.choice(family.names).format(k=k)
    params = rng.choice(ARG_NAMES[family.params])
    body = family.body.format(a=params[0], b=params[-1], k=k)
    checks = tuple((args, family.ref(k, *args)) for args in family.examples)
    instruction = rng.choice(PHRASINGS).format(name=name, task=family.task.format(k=k))
    text_input = ""
    if rng.random() < WITH_INPUT_SHARE:
        args, expected = checks[0]
        text_input = f"Example: {name}({', '.join(map(repr, args))}) returns {expected!r}"
    output = f"def {name}({', '.join(params)}):\n    {body}"
    return CodeCase({"instruction": instruction, "input": text_input, "output": output}, name, checks)


def _family_cases(family: Family, rng: random.Random) -> list[CodeCase]:
    """Up to ROWS_PER_FAMILY variations of one family with distinct instruction + input."""
    drawn = [_case(family, rng) for _ in range(8 * ROWS_PER_FAMILY)]
    return unique_by(drawn, lambda c: (c.row["instruction"], c.row["input"]))[:ROWS_PER_FAMILY]


def build_cases() -> tuple[list[CodeCase], list[CodeCase]]:
    """Build (train, test) cases with their behaviour checks; `build` drops the checks."""
    rng = random.Random(31)
    tagged = [(family.task, case) for family in FAMILIES for case in _family_cases(family, rng)]
    train, test = stratified_split(tagged, lambda item: item[0], TEST_ROWS, rng)
    return [case for _, case in train], [case for _, case in test]


def build() -> tuple[list[dict], list[dict]]:
    """Build (train, test) Alpaca rows: about 40% carry an example call as input."""
    train, test = build_cases()
    return [c.row for c in train], [c.row for c in test]
