"""The pairwise judge: reading verdicts, both answer orders, the win rate with its interval, self-agreement, stopping,
judge.json, and the transformers backend end to end with the tiny model."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from studio import runs
from studio.errors import ModelError, RunError
from studio.evaluate.comparison import Comparison, ComparisonRow, save_comparison
from studio.evaluate.judge import PROMPT, judge_comparison, judge_run, parse_verdict, stopped_note
from studio.evaluate.judge_backends import JudgeSpec, TransformersJudge, make_judge
from studio.evaluate.judge_record import JudgeResult, JudgeStopped, JudgeUnavailable, Verdict, load_judge
from studio.evaluate.scoring import Scores
from studio.model.loading import LoadedModel
from studio.publish.scorecard import JUDGE_MIN_AGREEMENT, judge_sentence
from studio.runs import RunFolder
from studio.settings import StudioSettings
from tests.judge_server import verdict_for
from tests.tiny import make_tiny_model, make_tiny_tokenizer

CHAT_TEMPLATE = ("{% for m in messages %}<|user|>\n{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
# (reference, base, tuned): the tuned answer is the reference in 6 rows, the base one in 1, neither in 1.
ANSWERS = [("PARIS", "paris is", "PARIS"), ("DOG", "dog dog", "DOG"), ("etik", "kite", "etik"), ("2", "two", "2"),
           ("apple banana", "banana", "apple banana"), ("LEMON", "lemon.", "LEMON"), ("fox", "fox", "the fox"),
           ("yak", "no", "nope")]


def make_comparison(answers=ANSWERS) -> Comparison:
    rows = [ComparisonRow(f"Task {i}", f"input {i}" if i % 2 else "", ref, base, tuned, 0.0, 0.0, 0.0, 0.0, False,
                          False) for i, (ref, base, tuned) in enumerate(answers)]
    scores = Scores(1.0, 1.0, 0.0, len(rows))
    return Comparison(rows, scores, scores, {"max_new_tokens": 8}, 1.0, 1.0, "alpaca")


def compared_run(root: Path, answers=ANSWERS) -> Path:
    """A run folder holding only a saved comparison (no model needed)."""
    run_dir = runs.create_run(root, StudioSettings()).path
    save_comparison(run_dir, make_comparison(answers))
    return run_dir


class FakeJudge:
    """A deterministic judge: `answer(prompt) -> reply`; keeps every prompt it was asked."""

    backend, generation = "fake", {"max_new_tokens": 4}

    def __init__(self, answer=verdict_for, name: str = "fake judge") -> None:
        self.answer, self.name, self.prompts = answer, name, []

    def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answer(prompt)


@pytest.mark.parametrize("reply, choice", [
    ("A", "A"), ("B", "B"), ("tie", "tie"), ("Tie.", "tie"), ("**B**", "B"), ("b", "B"), ("Answer A", "A"),
    ("Verdict: [[A]]", "A"), ("[[C]]", "tie"), ("I think so. [[B]]", "B"), ("Answer B is better.", "B"),
    ("The better answer: A, since it matches.", "A"), ("<think>A looks short, B too</think>\nB", "B"),
    ("Both are equally good.", "tie"), ("The answer is a tie.", "tie"), ("a tie", "tie"), ("Option A.", "A"),
    ("", None), ("apple banana cherry", None), ("<think>unfinished A B", None), ("a b c", None),
])
def test_verdicts_are_read_from_the_ways_judges_word_them(reply, choice):
    assert parse_verdict(reply) == choice


def test_every_pair_is_asked_in_both_orders_and_read_from_the_tuned_side():
    judge = FakeJudge()
    result = judge_comparison(make_comparison(), judge, JUDGE_MIN_AGREEMENT)
    assert len(judge.prompts) == 2 * len(ANSWERS) and [v.order for v in result.verdicts[:2]] == \
        ["opponent_first", "tuned_first"]
    first, second = judge.prompts[:2]
    assert "### Answer A:\nparis is\n" in first and "### Answer B:\nPARIS\n" in first
    assert "### Answer A:\nPARIS\n" in second and "### Answer B:\nparis is\n" in second
    assert "### Reference answer:\nPARIS" in first and "### Input:" not in first
    assert "### Input:\ninput 1" in judge.prompts[2]
    assert [v.winner for v in result.verdicts[:2]] == ["tuned", "tuned"]
    summary = result.summary()
    assert summary | {"low": None, "high": None} == {
        "win_rate": 0.75, "low": None, "high": None, "pairs": 8, "wins": 6, "ties": 1, "losses": 1, "agreement": 1.0,
        "opponent": "base", "trusted": True, "judged": 8, "unreadable": 0}
    assert 0.4 < summary["low"] < 0.75 < summary["high"] <= 1.0
    sentence = judge_sentence(summary)
    assert sentence.startswith("A judge preferred the tuned answer over the base one in 75% [95% CI ")
    assert "of 8 pairs (1 ties), agreeing with itself across both orders on 100%." in sentence


def test_a_judge_that_always_picks_the_first_answer_is_too_weak_to_trust():
    summary = judge_comparison(make_comparison(), FakeJudge(lambda p: "A"), JUDGE_MIN_AGREEMENT).summary()
    # Each pair: base wins as A, tuned wins as A: the orders cancel into a tie, and the judge never agrees with itself.
    assert summary["agreement"] == 0.0 and summary["ties"] == 8 and summary["win_rate"] == 0.0
    assert summary["trusted"] is False and "too weak to trust" in judge_sentence(summary)


def test_unreadable_replies_are_counted_and_their_pairs_not_scored():
    replies = iter(["A", "gibberish", "B", "A", *["tie"] * 12])  # pair 0: one unreadable; pair 1: tuned wins twice
    summary = judge_comparison(make_comparison(), FakeJudge(lambda p: next(replies)), 0.5).summary()
    assert summary["unreadable"] == 1 and summary["judged"] == 8 and summary["pairs"] == 7
    assert summary["win_rate"] == pytest.approx(1 / 7) and summary["ties"] == 6
    assert summary["agreement"] == pytest.approx(7 / 8) and summary["trusted"] is True


def test_no_readable_reply_is_untrusted_with_no_win_rate():
    summary = judge_comparison(make_comparison(ANSWERS[:1]), FakeJudge(lambda p: "hmm"), 0.7).summary()
    assert summary["win_rate"] is None and summary["low"] is None and summary["pairs"] == 0
    assert summary["trusted"] is False and "too weak to trust" in judge_sentence(summary)


def test_stop_between_pairs_keeps_the_pairs_judged(tmp_path):
    run_dir, seen = compared_run(tmp_path), []
    result = judge_run(run_dir, FakeJudge(), 0.7, progress=lambda done, total: seen.append((done, total)),
                       should_stop=lambda: len(seen) >= 3)
    assert seen == [(1, 8), (2, 8), (3, 8)] and len(result.verdicts) == 6
    assert result.partial and result.planned == 8 and result.summary()["pairs"] == 3
    assert stopped_note(result) == "Stopped after 3 of 8 pairs; the result covers those 3."
    assert load_judge(run_dir).partial


def test_a_stop_before_the_first_pair_saves_nothing(tmp_path):
    run_dir = compared_run(tmp_path)
    with pytest.raises(JudgeStopped):
        judge_run(run_dir, FakeJudge(), 0.7, should_stop=lambda: True)
    assert load_judge(run_dir) is None


def test_judge_json_keeps_the_prompt_and_every_reply_and_leaves_the_comparison_alone(tmp_path):
    run_dir = compared_run(tmp_path)
    folder = RunFolder(run_dir)
    before = folder.comparison_file.read_bytes(), folder.comparison_rows_file.read_bytes()
    result = judge_run(run_dir, FakeJudge(), JUDGE_MIN_AGREEMENT)
    record = folder.read_json(folder.judge_file)
    assert record["prompt"] == PROMPT and record["judge"] == "fake judge" and record["opponent"] == "base"
    assert len(record["verdicts"]) == 16
    assert {v["order"] for v in record["verdicts"]} == {"opponent_first", "tuned_first"}
    assert all(v["reply"] in ("A", "B", "tie") for v in record["verdicts"])
    assert record["summary"]["win_rate"] == 0.75 and record["bootstrap"]["resamples"] == 1000
    assert load_judge(run_dir).summary() == result.summary()
    assert (folder.comparison_file.read_bytes(), folder.comparison_rows_file.read_bytes()) == before


def test_a_run_without_a_comparison_or_without_the_opponents_answers_is_one_sentence(tmp_path):
    bare = runs.create_run(tmp_path, StudioSettings()).path
    with pytest.raises(RunError, match=r"^Run \S+ has no compared answers yet; run the comparison before judging\.$"):
        judge_run(bare, FakeJudge(), 0.7)
    with pytest.raises(Exception, match=r"^This comparison has no baseline answers to judge the tuned ones against\.$"):
        judge_run(compared_run(tmp_path), FakeJudge(), 0.7, opponent="baseline")


def test_the_tuned_answers_are_judged_against_the_prompt_only_baseline_when_asked(tmp_path):
    from studio.evaluate.baseline_record import score_baseline
    from studio.evaluate.generation import Answer

    comparison = make_comparison()
    # The baseline gives the reference where the base model did not in the first row: a tie there, not a win.
    shots = [ref if i == 0 else base for i, (ref, base, _) in enumerate(ANSWERS)]
    comparison.baseline = score_baseline(comparison.rows, [Answer(t, t, 1, "eos") for t in shots], 2, "fits")
    run_dir = runs.create_run(tmp_path, StudioSettings()).path
    save_comparison(run_dir, comparison)
    judge = FakeJudge()
    result = judge_run(run_dir, judge, JUDGE_MIN_AGREEMENT, opponent="baseline")
    assert result.opponent == "baseline" and load_judge(run_dir).opponent == "baseline"
    assert "### Answer A:\nPARIS\n" in judge.prompts[0] and "### Answer B:\nPARIS\n" in judge.prompts[1]
    summary = result.summary()
    assert (summary["wins"], summary["ties"], summary["losses"], summary["opponent"]) == (5, 2, 1, "baseline")
    assert "preferred the tuned answer over the prompt-only baseline's in " in judge_sentence(summary)


def test_the_record_reads_back_from_its_dict():
    result = JudgeResult("j", "fake", PROMPT, "base", [Verdict(0, "opponent_first", "B", "B"),
                                                      Verdict(0, "tuned_first", "A", "A")], 0.7, planned=1)
    assert JudgeResult.from_dict(result.to_dict()) == result
    assert result.summary()["win_rate"] == 1.0 and result.summary()["low"] is None  # one pair: no interval


# ---- the transformers backend, with the tiny model -------------------------------------------------------------

def chat_loader(template: str | None = CHAT_TEMPLATE):
    """An injected model loader giving the tiny model, its tokenizer with a simple chat template, and the name asked."""
    names = []

    def load(settings, token=None) -> LoadedModel:
        names.append(settings.model)
        tokenizer = make_tiny_tokenizer()
        tokenizer.chat_template = template
        return LoadedModel(make_tiny_model(tokenizer), tokenizer, settings.model, "local", 0.0, False)

    return load, names


def test_the_transformers_judge_runs_end_to_end_with_a_chat_model(tmp_path):
    run_dir = compared_run(tmp_path, ANSWERS[:3])
    load, names = chat_loader()
    judge = make_judge(JudgeSpec(model="my/chat-judge", max_new_tokens=4), model_loader=load)
    assert isinstance(judge, TransformersJudge) and names == ["my/chat-judge"]
    result = judge_run(run_dir, judge, JUDGE_MIN_AGREEMENT)
    assert len(result.verdicts) == 6 and all(isinstance(v.reply, str) for v in result.verdicts)
    summary = result.summary()  # the untrained tiny model writes noise: whatever it says is read or counted
    assert summary["unreadable"] == sum(v.choice is None for v in result.verdicts) and summary["judged"] == 3
    assert result.backend == "transformers" and result.generation == {"do_sample": False, "max_new_tokens": 4}
    assert load_judge(run_dir).judge == "my/chat-judge"


def test_the_same_prompt_gives_the_same_reply():
    load, _ = chat_loader()
    judge = make_judge(JudgeSpec(model="x", max_new_tokens=6), model_loader=load)
    prompt = PROMPT.format(instruction="Say hi", input="", reference="hi", answer_a="hi", answer_b="bye")
    assert judge.ask(prompt) == judge.ask(prompt)  # greedy


def test_a_judge_model_without_a_chat_template_or_that_does_not_load_is_one_sentence(tmp_path):
    load, _ = chat_loader(template=None)
    with pytest.raises(JudgeUnavailable, match=r"^The judge model base/model has no chat template; choose an "
                                               r"instruction-tuned \(chat\) model as the judge\.$"):
        make_judge(JudgeSpec(model="base/model"), model_loader=load)
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError, match=re.escape(f"The model folder {missing} does not exist.")):
        make_judge(JudgeSpec(model=str(missing)))
