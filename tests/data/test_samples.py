"""Tests for the built-in sample datasets: size, shape, determinism, held-out hygiene and computed answers."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.data.samples import SAMPLES, Sample
from studio.data.samples.code_tasks import build_cases
from studio.data.samples.product_docs import PRODUCT, REFUSAL

SHAPE_KEYS = {
    "word_tasks": ("instruction", "input", "output"),
    "code_tasks": ("instruction", "input", "output"),
    "product_docs": ("question", "answer"),
    "role_prompts": ("act", "prompt"),
    "chat": ("messages",),
}


def prompt_key(name: str, row: dict) -> object:
    """What the model is asked for a row; a test row with the same key in train would leak."""
    if name in ("word_tasks", "code_tasks"):
        return (row["instruction"], row["input"])
    if name == "product_docs":
        return row["question"]
    if name == "role_prompts":
        return row["act"]
    # A chat is keyed by everything up to and including its first user message.
    first_user = next(i for i, m in enumerate(row["messages"]) if m["role"] == "user")
    return tuple((m["role"], m["content"]) for m in row["messages"][: first_user + 1])


@pytest.fixture(scope="module", params=list(SAMPLES))
def built(request) -> tuple[Sample, list[dict], list[dict]]:
    """Each sample with its (train, test) rows, built once per module."""
    sample = SAMPLES[request.param]
    train, test = sample.build()
    return sample, train, test


def test_registry_lists_five_samples_with_word_tasks_first():
    assert list(SAMPLES) == ["word_tasks", "product_docs", "role_prompts", "code_tasks", "chat"]
    for key, sample in SAMPLES.items():
        assert sample.name == key
        assert sample.title.strip() and sample.description.strip() and sample.recommended_template.strip()
    assert SAMPLES["word_tasks"].title == "Word tasks"
    assert SAMPLES["product_docs"].recommended_template == "question_answer"
    assert SAMPLES["code_tasks"].recommended_template == "instruction_output"
    assert SAMPLES["word_tasks"].recommended_template == "instruction_output"  # the fast default
    assert SAMPLES["chat"].recommended_template == "chat"


def test_importing_samples_does_not_import_gradio():
    code = "import sys, studio.data.samples; sys.exit('gradio' in sys.modules)"
    repo_root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=repo_root, check=False).returncode == 0


def test_build_is_deterministic_and_fast(built):
    sample, train, test = built
    start = time.perf_counter()
    again = sample.build()
    assert time.perf_counter() - start < 1.0
    assert again == (train, test)


def test_sizes_and_description_counts(built):
    sample, train, test = built
    assert len(train) + len(test) >= 150
    assert len(test) >= 32
    # The Data tab shows the description; its counts must match what the build returns.
    counts = re.search(r"(\d+) train / (\d+) test", sample.description)
    assert counts and (int(counts[1]), int(counts[2])) == (len(train), len(test))


def test_rows_have_the_native_shape(built):
    sample, train, test = built
    keys = SHAPE_KEYS[sample.name]
    for row in train + test:
        assert tuple(row) == keys
        if keys == ("messages",):
            assert all(isinstance(m["content"], str) and m["content"].strip() for m in row["messages"])
            continue
        for key in keys:
            assert isinstance(row[key], str)
            assert row[key].strip() or key == "input"


def test_no_test_prompt_appears_in_train(built):
    sample, train, test = built
    train_keys = {prompt_key(sample.name, row) for row in train}
    assert not [row for row in test if prompt_key(sample.name, row) in train_keys]


# Independent re-implementations of the word tasks, keyed by task, with the exact instruction texts.
WORD_TASKS = {
    "uppercase": (("Convert the text to uppercase.", "Write the text in capital letters."), str.upper),
    "capitalize": (("Capitalize each word.", "Start every word with a capital letter."), str.title),
    "reverse_order": (("Reverse the order of the words.", "Write the words in reverse order."),
                      lambda t: " ".join(t.split()[::-1])),
    "sort": (("Sort the words alphabetically.", "Put the words in alphabetical order."),
             lambda t: " ".join(sorted(t.split()))),
    "count": (("Count the words.", "How many words are there?"), lambda t: str(t.count(" ") + 1)),
    "first_word": (("What is the first word?", "Give the first word."), lambda t: t.split(" ", 1)[0]),
    "last_word": (("What is the last word?", "Give the last word."), lambda t: t.rsplit(" ", 1)[-1]),
    "hyphenate": (("Join the words with hyphens.", "Connect the words using hyphens."),
                  lambda t: t.replace(" ", "-")),
}
TASK_OF = {instruction: task for task, (phrasings, _) in WORD_TASKS.items() for instruction in phrasings}


def test_word_tasks_answers_are_correct_and_inputs_short():
    train, test = SAMPLES["word_tasks"].build()
    assert (len(train), len(test)) == (320, 48)
    for row in train + test:
        answer = WORD_TASKS[TASK_OF[row["instruction"]]][1]
        assert row["output"] == answer(row["input"])
        assert 2 <= len(row["input"].split()) <= 6
        assert re.fullmatch(r"[a-z ]+", row["input"])


def test_word_tasks_test_inputs_are_unseen_and_interleaved():
    train, test = SAMPLES["word_tasks"].build()
    assert not {r["input"] for r in test} & {r["input"] for r in train}
    # The studio compares only a prefix of the test split, so the first rows must already span every task.
    assert {TASK_OF[r["instruction"]] for r in test[: len(WORD_TASKS)]} == set(WORD_TASKS)
    assert all(sum(TASK_OF[r["instruction"]] == task for r in test) == 6 for task in WORD_TASKS)


def test_code_tasks_outputs_compile_and_behave():
    train, test = build_cases()
    assert [c.row for c in train] == SAMPLES["code_tasks"].build()[0]
    for case in train + test:
        code = case.row["output"]
        compile(code, case.name, "exec")
        assert code.startswith(f"def {case.name}(") and case.name in case.row["instruction"]
        namespace: dict = {}
        exec(code, namespace)  # noqa: S102 - the sample's own generated code, checked here on purpose
        for args, expected in case.checks:
            result = namespace[case.name](*args)
            assert result == expected and type(result) is type(expected), (code, args, result, expected)


def test_code_tasks_mix_inputs_like_codealpaca():
    train, test = SAMPLES["code_tasks"].build()
    share = sum(bool(r["input"]) for r in train + test) / len(train + test)
    assert 0.3 <= share <= 0.55
    for row in train + test:
        if row["input"]:
            assert row["input"].startswith("Example: ")


def test_product_docs_refuses_off_topic_with_the_exact_sentence():
    train, test = SAMPLES["product_docs"].build()
    refusal = f"Let's keep the discussion relevant to {PRODUCT}."
    rows = train + test
    refusals = [r for r in rows if r["answer"] == refusal]
    assert 0.1 <= len(refusals) / len(rows) <= 0.2
    assert any(r["answer"] == refusal for r in test[:16])
    # Only the exact sentence counts as a refusal; no near-miss variants.
    assert all(r["answer"] == refusal for r in rows if "keep the discussion" in r["answer"])


def test_docs_training_only_phrasings_never_reach_the_test_or_validation_rows():
    from studio.data.samples.product_docs import EXTRA_OFF_TOPIC, EXTRA_QUESTIONS, FACTS

    train, test = SAMPLES["product_docs"].build()
    extra = {q for pair in EXTRA_QUESTIONS.values() for q in pair} | set(EXTRA_OFF_TOPIC)
    assert set(EXTRA_QUESTIONS) == {f.questions[0] for f in FACTS}  # every fact has its extra phrasings
    assert extra <= {r["question"] for r in train}
    assert not extra & {r["question"] for r in test + SAMPLES["product_docs"].validation()}
    # Each fact is asked four ways in training; its test phrasing is never one of them.
    for fact in FACTS:
        asked = {r["question"] for r in train if r["answer"] == fact.answer}
        assert len(asked) == 4 and not asked & {r["question"] for r in test}


def test_docs_splits_are_the_rows_every_earlier_report_used():
    # The sha256 of build()'s rows when its held-out questions were still chosen by seeded draws: the stored split
    # gives the very same train and test rows, in the same order.
    train, test = SAMPLES["product_docs"].build()
    rows = json.dumps([train, test], ensure_ascii=False).encode()
    assert hashlib.sha256(rows).hexdigest() == "6cefc060452c69670058d7145042ad861a695f7991cff89af61dd90846b08bf4"
    assert (len(train), len(test)) == (238, 56)


def test_docs_stored_split_holds_every_question_of_the_sample_once():
    from studio.data.samples.product_docs import EXTRA_OFF_TOPIC, EXTRA_QUESTIONS, FACTS, OFF_TOPIC

    train, test = SAMPLES["product_docs"].build()
    asked = [r["question"] for r in train + test]
    phrasings = [q for f in FACTS for q in f.questions + EXTRA_QUESTIONS[f.questions[0]]]
    assert sorted(asked) == sorted(phrasings + list(OFF_TOPIC + EXTRA_OFF_TOPIC))
    # One phrasing of every fact is held out, and six off-topic questions.
    assert sorted(r["answer"] for r in test if r["answer"] != REFUSAL) == sorted(f.answer for f in FACTS)
    assert sum(r["answer"] == REFUSAL for r in test) == 6


def test_role_prompts_hold_out_whole_roles():
    train, test = SAMPLES["role_prompts"].build()
    assert not {r["act"] for r in test} & {r["act"] for r in train}
    assert len({r["act"] for r in train + test}) >= 60
    for row in train + test:
        assert row["prompt"].startswith("I want you to act as ")
        assert len(row["act"].split()) <= 4


def first_user_message(row: dict) -> str:
    """The opening question of a chat row."""
    return next(m["content"] for m in row["messages"] if m["role"] == "user")


def test_chat_roles_alternate_and_end_with_assistant():
    train, test = SAMPLES["chat"].build()
    for row in train + test:
        roles = [m["role"] for m in row["messages"]]
        if roles[0] == "system":
            roles = roles[1:]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and len(roles) % 2 == 0
        assert 2 <= roles.count("user") <= 3
    # Stricter than the shared key: an opening question is never reused, with or without a system message.
    assert not {first_user_message(r) for r in test} & {first_user_message(r) for r in train}


MILLISECONDS = {"milliseconds": 1, "seconds": 1000, "minutes": 60_000, "hours": 3_600_000, "days": 86_400_000,
                "weeks": 604_800_000}


def test_chat_computed_answers_are_right():
    train, test = SAMPLES["chat"].build()
    ops = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b, "times": lambda a, b: a * b}
    seen = 0
    for row in train + test:
        for m in row["messages"]:
            if m["role"] != "assistant":
                continue
            if sum_ := re.fullmatch(r"(-?\d+) (plus|minus|times) (-?\d+) is (-?\d+)\.", m["content"]):
                a, op, b, result = sum_.groups()
                assert ops[op](int(a), int(b)) == int(result)
                seen += 1
            if letters := re.fullmatch(r'"(\w+)" has (\d+) letters\.', m["content"]):
                assert len(letters[1]) == int(letters[2])
                seen += 1
            span = re.fullmatch(r"(\d+) (\w+) is (\d+) (\w+)\.", m["content"])
            if span and span[2] in MILLISECONDS and span[4] in MILLISECONDS:
                assert int(span[1]) * MILLISECONDS[span[2]] == int(span[3]) * MILLISECONDS[span[4]]
                seen += 1
            if temp := re.fullmatch(r"(\d+) degrees Celsius is ([\d.]+) degrees Fahrenheit\.", m["content"]):
                assert abs((float(temp[2]) - 32) * 5 / 9 - int(temp[1])) < 0.01
                seen += 1
    assert seen >= 100


@pytest.mark.parametrize("name", [n for n, s in SAMPLES.items() if s.validation is not None])
def test_validation_rows_never_appear_in_train_or_test(name):
    train, test = SAMPLES[name].build()
    validation = SAMPLES[name].validation()
    prompt = (lambda r: r["question"]) if name == "product_docs" else (lambda r: (r["instruction"], r["input"]))
    assert validation and not {prompt(r) for r in validation} & {prompt(r) for r in train + test}
    assert validation == SAMPLES[name].validation()  # deterministic


def test_docs_answers_are_graded_by_their_key_facts():
    from studio.data.samples.product_docs import FACTS, REFUSAL, grade, grade_counts

    trash = next(f for f in FACTS if "Trash" in f.answer)
    assert grade(trash.answer, "Deleted notes stay in the Trash for 30 days.") == "right"
    assert grade(trash.answer, "Deleted notes stay on the account for 7 days.") == "wrong"
    assert grade(trash.answer, REFUSAL) == "refused"
    assert grade(REFUSAL, "Let's keep the discussion relevant to Ferncrest Notes.") == "declined"
    assert grade(REFUSAL, "Play a C chord every day.") == "answered"
    counts = grade_counts([trash.answer, REFUSAL], ["30 days in the Trash", "Sure, here is a poem"])
    assert (counts["right"], counts["facts"], counts["answered"], counts["off_topic"]) == (1, 1, 1, 1)
    for fact in FACTS:  # every key phrase is in its own answer and the validation phrasing is new
        assert grade(fact.answer, fact.answer) == "right" and fact.validation not in fact.questions
