"""The command line: inspect, train -> compare -> report on a tiny model, runs, export; errors exit 2 with one line."""
from __future__ import annotations

import json

import pytest

from studio import cli


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("train", "compare", "inspect", "export", "push", "presets", "runs"):
        assert command in out


def test_inspect_prints_shape_and_a_rendered_example(capsys):
    assert cli.main(["inspect", "sample:word_tasks"]) == 0
    out = capsys.readouterr().out
    assert "shape:   alpaca" in out and "### Instruction:" in out and "rows:" in out


def test_inspect_bad_file_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{oops\n')
    assert cli.main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Line 2 of 'broken.jsonl'") and "\n" not in err


def test_inspect_with_a_column_mapping(tmp_path, capsys):
    path = tmp_path / "pairs.csv"
    path.write_text("q,reply\nhello,world\nhi,there\n")
    assert cli.main(["inspect", str(path), "--map", "instruction=q", "--map", "output=reply"]) == 0
    assert "mapped" in capsys.readouterr().out


def test_bad_setting_is_one_line(capsys):
    assert cli.main(["train", "--set", "lora.r=0"]) == 2
    assert capsys.readouterr().err.strip() == "error: lora.r must be at least 1, not 0."


def test_train_compare_runs_export_end_to_end(tmp_path, tiny_loader, capsys):
    root = tmp_path / "runs"
    code = cli.main(["train", "--runs-dir", str(root), "--set", "train.max_steps=2", "--set", "train.batch_size=4",
                     "--set", "data.max_test_examples=4", "--set", "generation.max_new_tokens=4",
                     "--set", "train.threads=1"], model_loader=tiny_loader)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "step 1/2" in out and "corpus BLEU" in out and "exact match" in out
    assert "Training on 1 CPU thread, pinned" in out
    run_dir = next(root.iterdir())
    assert json.loads((run_dir / "run.json").read_text())["threads"] == 1
    assert (run_dir / "report.html").is_file() and (run_dir / "comparison.jsonl").is_file()
    summary = json.loads((run_dir / "comparison.json").read_text())
    assert summary["base"]["n"] == 4

    assert cli.main(["runs", "--runs-dir", str(root)]) == 0
    assert run_dir.name in capsys.readouterr().out
    assert cli.main(["compare", run_dir.name, "--runs-dir", str(root), "--limit", "2",
                     "--set", "generation.max_new_tokens=3"], model_loader=tiny_loader) == 0
    assert json.loads((run_dir / "comparison.json").read_text())["base"]["n"] == 2
    assert cli.main(["export", run_dir.name, "--runs-dir", str(root)]) == 0
    assert list((run_dir / "exports").glob("*.zip"))


def test_push_without_token_is_refused(tmp_path, tiny_loader, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    root = tmp_path / "runs"
    cli.main(["train", "--runs-dir", str(root), "--set", "train.max_steps=1", "--no-compare"], model_loader=tiny_loader)
    run_id = next(root.iterdir()).name
    capsys.readouterr()
    assert cli.main(["push", run_id, "--repo", "me/x", "--runs-dir", str(root)]) == 2
    assert "token" in capsys.readouterr().err
