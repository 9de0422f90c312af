"""`python -m studio train --data FILE` fits train + Compare into the time budget: on your own data it trains on the
subset that fits at this machine's measured speed and says so in one line; an explicit size always wins."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from studio import cli
from studio.runs import RunFolder, create_run, update_run
from studio.settings import StudioSettings

LINE = re.compile(r"^Training on (\d+) of (\d+) training rows to fit the 4\.5-minute training budget \(10 minutes "
                  r"with Compare, at 2 tokens/s measured in run [\w-]+\); --budget-minutes 0 or "
                  r"--set data\.max_examples=0 uses all\.$", re.MULTILINE)


@pytest.fixture
def slow_machine(tmp_path) -> Path:
    """A runs folder whose newest run of the default model measured 2 tokens/s: few long rows fit the budget."""
    root = tmp_path / "runs"
    info = create_run(root, StudioSettings())
    for step in range(1, 4):
        RunFolder(info.path).append_metric({"step": step, "loss": 1.0, "tokens_per_second": 2.0, "elapsed": step})
    update_run(info.path, status="completed")
    return root


@pytest.fixture
def long_answers(tmp_path) -> Path:
    """60 rows of instruction -> a 40-word answer."""
    path = tmp_path / "long.jsonl"
    rows = [{"instruction": f"Explain topic number {i} in a few sentences.",
             "output": " ".join(f"word{(i * 7 + j) % 50}" for j in range(40))} for i in range(60)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _train(root: Path, data: Path | None, tiny_loader, *extra: str) -> RunFolder:
    """Train (no Compare) and return the new run's folder."""
    before = {p.name for p in root.iterdir()}
    source = ["--data", str(data)] if data else []
    assert cli.main(["train", *source, "--runs-dir", str(root), "--no-compare", "--set", "train.threads=1", *extra],
                    model_loader=tiny_loader) == 0
    (new,) = [p for p in root.iterdir() if p.name not in before]
    return RunFolder(new)


def test_own_data_trains_on_the_subset_that_fits_and_says_so(slow_machine, long_answers, tiny_loader, capsys):
    folder = _train(slow_machine, long_answers, tiny_loader)
    out = capsys.readouterr().out
    found = LINE.search(out)
    assert found, out
    chosen, n_train = int(found.group(1)), int(found.group(2))
    assert n_train == 54 and 1 <= chosen < n_train  # 60 rows, 6 held out
    assert folder.read_settings().data.max_examples > chosen  # the held-out rows come on top of the training rows
    assert len(folder.read_split("train")) == chosen  # and the run trained on exactly what the line said


@pytest.mark.parametrize("extra", [("--set", "data.max_examples=0"), ("--budget-minutes", "0"),
                                   ("--set", "train.max_steps=2")])
def test_an_explicit_size_or_no_budget_keeps_every_row(slow_machine, long_answers, tiny_loader, capsys, extra):
    folder = _train(slow_machine, long_answers, tiny_loader, *extra)
    assert not LINE.search(capsys.readouterr().out)
    assert folder.read_settings().data.max_examples == 0


def test_a_built_in_sample_keeps_its_figures(slow_machine, tiny_loader, capsys):
    folder = _train(slow_machine, None, tiny_loader)
    assert not LINE.search(capsys.readouterr().out)
    assert folder.read_settings().data.max_examples == 0
