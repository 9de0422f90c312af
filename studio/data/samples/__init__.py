"""Built-in sample datasets written by the project, each with a fixed held-out test split.

Every builder is deterministic (its own seeded `random.Random`) and returns rows in the dataset's native shape,
so the studio's shape detector handles them exactly like a user's file.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from studio.data.samples import chat, code_tasks, product_docs, role_prompts, word_tasks


@dataclass(frozen=True)
class Sample:
    """One built-in dataset: its names, what it shows, the template it suits, and how to build its splits."""

    name: str
    title: str
    description: str
    recommended_template: str
    build: Callable[[], tuple[list[dict], list[dict]]]
    # Rows for choosing settings (sweeps), disjoint from build()'s train and test rows; None when there are none.
    validation: Callable[[], list[dict]] | None = None


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample(
            "word_tasks", "Word tasks",
            "Short instructions (uppercase, sort, reverse, count, first/last word, hyphens) with answers computed "
            "from the input words; the base model rambles, a minute of tuning makes it answer. "
            "320 train / 48 test rows (Alpaca shape).",
            # The short ### Instruction / ### Output layout leaves out Alpaca's preamble, so each example has far
            # fewer tokens and the demo trains faster (its time: `python -m bench demo`, README's bench:demo block).
            "instruction_output", word_tasks.build, word_tasks.build_validation,
        ),
        Sample(
            "product_docs", "Product docs Q&A",
            "Questions about a fictional note-taking app, Ferncrest Notes, with docs-style answers and polite "
            "refusals for off-topic questions (as in the Lamini docs tutorial). 238 train / 56 test rows.",
            "question_answer", product_docs.build, product_docs.build_validation,
        ),
        Sample(
            "role_prompts", "Role prompts",
            "A short role name (act) becomes a full \"I want you to act as ...\" prompt: a style change. "
            "66 roles in three sentence patterns; 12 roles are held out. 162 train / 36 test rows.",
            "custom", role_prompts.build,
        ),
        Sample(
            "code_tasks", "Code tasks",
            "CodeAlpaca-style instructions, about 40% with an example call as input, answered by a short Python "
            "function that is checked to work. 158 train / 40 test rows.",
            "instruction_output", code_tasks.build,
        ),
        Sample(
            "chat", "Chat",
            "Two- and three-turn conversations with a helper that converts units, does sums and answers word "
            "questions, some with a system message. 214 train / 36 test conversations.",
            "chat", chat.build,
        ),
    )
}
