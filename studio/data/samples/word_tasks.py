"""Word tasks: short Alpaca rows whose answers are computed from the input words (the default demo sample)."""
from __future__ import annotations

import random
from collections.abc import Callable

from studio.data.samples._common import stratified_split

# Common, single-token-friendly English words; lowercase letters only so every task has one right answer.
WORDS: tuple[str, ...] = tuple("""
apple banana cherry grape lemon mango melon peach pear plum berry orange onion garlic pepper carrot potato tomato
bread butter cheese cream honey sugar salt rice pasta soup salad pizza cookie cake pie tea coffee milk water juice
dog cat horse cow sheep goat pig duck goose chicken rabbit mouse tiger lion bear wolf fox deer zebra monkey whale
shark fish frog snake eagle owl crow swan bee ant spider river ocean lake pond beach island forest jungle desert
hill mountain valley cave field garden meadow park road street bridge tunnel city town village farm house home
room kitchen door window wall roof floor table chair bed lamp clock mirror carpet sofa shelf box bag basket bottle
cup glass plate bowl spoon fork knife pan pot kettle oven stove fridge sink towel soap brush comb hat coat shirt
dress skirt sock shoe boot glove scarf ring watch belt button pocket book paper pen pencil letter card map
picture poem story song music piano guitar drum violin flute radio phone camera computer screen keyboard robot
rocket train plane ship boat car bus truck bike wheel engine ticket station airport school teacher student class
lesson market shop bank office doctor nurse farmer baker painter singer dancer pilot sailor king queen prince
friend family mother father sister brother baby child people team game ball kite puzzle toy doll gift party
holiday summer winter spring autumn morning evening night day week month year today moon star planet sun sky
cloud rain snow storm wind thunder fire smoke stone rock sand gold silver iron wood leaf tree flower rose grass
seed root branch red blue green yellow purple pink brown black white gray happy quiet brave calm clever gentle
kind lucky proud silly sleepy tiny huge small big tall short long warm cold hot cool soft hard bright dark fast
slow early late new old young rich busy empty full clean dirty fresh sweet sour bitter round flat sharp heavy
light loud smooth strong simple open close jump run walk swim sing dance read write draw paint cook bake build
climb fly drive ride play laugh smile sleep dream think listen speak carry catch throw push pull wash
""".split())

# Each task: short phrasings (kept few so a 270M model learns the mapping fast) and the function computing the answer.
TASKS: dict[str, tuple[tuple[str, ...], Callable[[list[str]], str]]] = {
    "uppercase": (("Convert the text to uppercase.", "Write the text in capital letters."),
                  lambda w: " ".join(w).upper()),
    "capitalize": (("Capitalize each word.", "Start every word with a capital letter."),
                   lambda w: " ".join(x.capitalize() for x in w)),
    "reverse_order": (("Reverse the order of the words.", "Write the words in reverse order."),
                      lambda w: " ".join(reversed(w))),
    "sort": (("Sort the words alphabetically.", "Put the words in alphabetical order."),
             lambda w: " ".join(sorted(w))),
    "count": (("Count the words.", "How many words are there?"),
              lambda w: str(len(w))),
    "first_word": (("What is the first word?", "Give the first word."),
                   lambda w: w[0]),
    "last_word": (("What is the last word?", "Give the last word."),
                  lambda w: w[-1]),
    "hyphenate": (("Join the words with hyphens.", "Connect the words using hyphens."),
                  lambda w: "-".join(w)),
}

TRAIN_PER_TASK = 40
TEST_PER_TASK = 6
VALIDATION_PER_TASK = 6


def _word_groups(rng: random.Random, count: int, taken: set[tuple[str, ...]] | None = None) -> list[list[str]]:
    """`count` distinct inputs of 2-5 distinct words (none in `taken`), so no input is shared between rows or splits."""
    seen: set[tuple[str, ...]] = set(taken or ())
    groups: list[list[str]] = []
    while len(groups) < count:
        words = rng.sample(WORDS, rng.randint(2, 5))
        if tuple(words) not in seen:
            seen.add(tuple(words))
            groups.append(words)
    return groups


def build() -> tuple[list[dict], list[dict]]:
    """Build (train, test): 320 train and 48 test rows, eight tasks, every input used once."""
    rng = random.Random(1234)
    per_task = TRAIN_PER_TASK + TEST_PER_TASK
    inputs = _word_groups(rng, per_task * len(TASKS))
    items = []
    for i, (task, (phrasings, answer)) in enumerate(TASKS.items()):
        for words in inputs[i * per_task:(i + 1) * per_task]:
            row = {"instruction": rng.choice(phrasings), "input": " ".join(words), "output": answer(words)}
            items.append((task, row))
    train, test = stratified_split(items, lambda item: item[0], TEST_PER_TASK * len(TASKS), rng)
    return [row for _, row in train], [row for _, row in test]


def build_validation() -> list[dict]:
    """48 validation rows for choosing settings: six per task, on inputs that no train or test row uses."""
    per_task = TRAIN_PER_TASK + TEST_PER_TASK
    taken = {tuple(words) for words in _word_groups(random.Random(1234), per_task * len(TASKS))}  # as build() draws
    rng = random.Random(4321)
    inputs = _word_groups(rng, VALIDATION_PER_TASK * len(TASKS), taken)
    rows = []
    for i, (phrasings, answer) in enumerate(TASKS.values()):
        for words in inputs[i * VALIDATION_PER_TASK:(i + 1) * VALIDATION_PER_TASK]:
            rows.append({"instruction": rng.choice(phrasings), "input": " ".join(words), "output": answer(words)})
    return rows
