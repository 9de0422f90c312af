"""The command line after the first run (studio.cli_runs): train --resume / --continue, Ctrl-C during compare keeps
what is answered, `snapshots` (watch it learn, choose, restore) and `diff` (two runs side by side)."""
from __future__ import annotations

import os
import re
import shutil
import signal

import pytest

from studio import cli, runs
from studio.evaluate import before_after
from studio.evaluate.comparison import load_comparison
from studio.runs import RunFolder
from tests.builders import make_finished_run
from tests.tiny import WORDS, write_uppercase_rows

QUICK = ["--template", "alpaca", "--set", "data.max_length=64", "--set", "train.batch_size=2",
         "--set", "train.threads=1", "--set", "data.max_test_examples=3", "--set", "generation.max_new_tokens=3"]


@pytest.fixture()
def root(tmp_path):
    return tmp_path / "runs"


@pytest.fixture()
def data(tmp_path):
    return str(write_uppercase_rows(tmp_path / "words.jsonl", WORDS))


def train(root, data, tiny_loader, *extra: str) -> str:
    before = {p.name for p in root.iterdir()} if root.is_dir() else set()
    assert cli.main(["train", "--runs-dir", str(root), "--data", data, *QUICK, *extra], model_loader=tiny_loader) == 0
    return ({p.name for p in root.iterdir()} - before).pop()


def test_resume_finishes_a_stopped_run_in_its_own_folder(root, data, tiny_loader, capsys):
    run_id = train(root, data, tiny_loader, "--set", "train.max_steps=6", "--set", "train.save_steps=2",
                   "--no-compare")
    # As a kill at step 5 leaves it: listed interrupted, its newest checkpoint the one of step 4.
    runs.update_run(root / run_id, status="interrupted", step=4)
    shutil.rmtree(root / run_id / "checkpoints" / "checkpoint-6")
    capsys.readouterr()
    assert cli.main(["train", "--resume", run_id, "--runs-dir", str(root), "--no-compare"],
                    model_loader=tiny_loader) == 0
    out = capsys.readouterr().out
    assert "Trained 6 steps" in out
    info = runs.read_run(root, run_id)
    assert (info.status, info.step, info.total_steps, info.resumed_from) == ("completed", 6, 6, "checkpoint-4")
    assert len(list(root.iterdir())) == 1  # the same folder, no new run


def test_resume_and_continue_refuse_what_they_cannot_honour(root, data, tiny_loader, capsys):
    run_id = train(root, data, tiny_loader, "--set", "train.max_steps=2", "--no-compare")
    capsys.readouterr()
    assert cli.main(["train", "--resume", run_id, "--set", "train.epochs=2", "--runs-dir", str(root)],
                    model_loader=tiny_loader) == 2
    assert capsys.readouterr().err.strip() == ("error: --resume keeps its own settings, so --set cannot be combined "
                                               "with it.")
    assert cli.main(["train", "--resume", run_id, "--runs-dir", str(root)], model_loader=tiny_loader) == 2
    assert "only a stopped, interrupted or failed run can be resumed" in capsys.readouterr().err
    assert cli.main(["train", "--continue", run_id, "--set", "lora.r=4", "--runs-dir", str(root)],
                    model_loader=tiny_loader) == 2
    assert "only train.* and generation.* can" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--resume", run_id, "--continue", run_id])


def test_continue_trains_a_completed_run_more_as_a_new_run(root, data, tiny_loader, capsys):
    parent = train(root, data, tiny_loader, "--set", "train.max_steps=4", "--no-compare")
    capsys.readouterr()
    assert cli.main(["train", "--continue", parent, "--set", "train.max_steps=2", "--runs-dir", str(root)],
                    model_loader=tiny_loader) == 0
    out = capsys.readouterr().out
    assert f"Training run {parent} more as a new run" in out and "Before / after instruction tuning" in out
    child = next(r for r in runs.list_runs(root) if r.run_id != parent)
    assert (child.parent_run, child.parent_checkpoint, child.step, child.status) == (parent, "checkpoint-4", 2,
                                                                                     "completed")
    assert cli.main(["runs", "--runs-dir", str(root)]) == 0
    assert f"(trained more from {parent})" in capsys.readouterr().out


def test_ctrl_c_during_compare_stops_after_the_batch_and_keeps_the_answered_rows(runs_dir, tiny_tokenizer,
                                                                                 tiny_loader, capsys, monkeypatch):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    real, calls = before_after.generate_answers, []
    before = signal.getsignal(signal.SIGINT)  # default, or ignored when the suite runs in the background

    def press_ctrl_c_on_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # base batch 2: after base and tuned of the first example
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(before_after, "generate_answers", press_ctrl_c_on_the_third_batch)
    assert cli.main(["compare", run_dir.name, "--runs-dir", str(runs_dir), "--set", "generation.batch_size=1",
                     "--set", "generation.max_new_tokens=3"], model_loader=tiny_loader) == 0
    out = capsys.readouterr().out
    assert "Stopping the comparison after the current batch; what is answered is kept" in out
    assert "Stopped after 1 of 2 examples; scores cover that one. Saved as the run's comparison, marked partial." in out
    assert "on 1 held-out examples" in out
    saved = load_comparison(run_dir)
    assert (saved.partial, len(saved.rows), saved.planned) == (True, 1, 2)
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C behaves as it did before again


def test_snapshots_scores_the_timeline_chooses_by_validation_and_restores(root, data, tiny_loader, capsys):
    run_id = train(root, data, tiny_loader, "--set", "train.max_steps=6", "--set", "data.validation_fraction=0.2",
                   "--set", "train.eval_steps=3", "--set", "train.snapshots=2", "--no-compare")
    capsys.readouterr()
    assert cli.main(["snapshots", run_id, "--runs-dir", str(root)], model_loader=tiny_loader) == 0
    out = capsys.readouterr().out
    assert re.search(r"Watch it learn: \d held-out examples, 2 snapshots, \d validation rows", out)
    assert "scoring the base model (1/3)" in out
    assert re.search(r"\n +0 +[\d.]+ +[\d.]+ +- +\(base model\)\n +3 +[\d.]+ +[\d.]+ +[\d.]+\n +6 ", out)
    assert re.search(r"Best snapshot by validation BLEU: step [36] \([\d.]+\); by eval loss: step [36]", out)
    assert cli.main(["snapshots", run_id, "--choose", "eval_loss", "--runs-dir", str(root)],
                    model_loader=tiny_loader) == 0
    chosen = runs.read_run(root, run_id).adapter_choice
    assert f"now uses the step-{chosen['step']} snapshot as its adapter" in capsys.readouterr().out
    assert cli.main(["snapshots", run_id, "--restore", "--runs-dir", str(root)]) == 0
    assert "uses its final adapter again" in capsys.readouterr().out
    assert runs.read_run(root, run_id).adapter_choice is None and not RunFolder(root / run_id).final_adapter_dir.exists()


def test_diff_puts_two_runs_side_by_side(root, data, tiny_loader, capsys):
    a = train(root, data, tiny_loader, "--set", "train.max_steps=2")
    b = train(root, data, tiny_loader, "--set", "train.max_steps=3", "--set", "train.learning_rate=0.01")
    capsys.readouterr()
    assert cli.main(["diff", a, b, "--runs-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"Run B ({b}) tuned BLEU" in out
    assert re.search(r"Both runs were compared on the same \d held-out examples: the difference has a paired", out)
    assert re.search(r"\n  Metric +A base +A tuned +B base +B tuned +B - A \(tuned\) +95% CI +Verdict\n  BLEU ", out)
    assert re.search(r"\n  train.learning_rate +0.001 +0.01\n  train.max_steps +2 +3", out)
    c = train(root, data, tiny_loader, "--set", "train.max_steps=1", "--no-compare")
    capsys.readouterr()
    assert cli.main(["diff", a, c, "--runs-dir", str(root)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: Run {c} has not been compared yet; run `python -m studio "
                                               f"compare {c}` first.")
