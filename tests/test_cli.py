"""The command line: inspect, train -> compare -> report on a tiny model, runs, export; errors exit 2 with one line."""
from __future__ import annotations

import json
import re

import pytest

from studio import cli


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("train", "compare", "probe", "inspect", "export", "push", "presets", "runs"):
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
                     "--set", "data.max_test_examples=4", "--set", "generation.max_new_tokens=4"],
                    model_loader=tiny_loader)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "step 1/2" in out and "corpus BLEU" in out and "exact match" in out
    run_dir = next(root.iterdir())
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


def test_probe_prints_the_table_and_ends_with_the_headline(tmp_path, tiny_tokenizer, tiny_loader, capsys):
    from tests.builders import make_finished_run

    run_dir, _ = make_finished_run(tmp_path, tiny_tokenizer)
    assert cli.main(["probe", run_dir.name, "--runs-dir", str(tmp_path), "--batch-size", "16"],
                    model_loader=tiny_loader) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"probe accuracy base \d+\.\d% -> tuned \d+\.\d%", lines[-1])
    assert any(line.startswith("Did it forget anything?") for line in lines)
    assert any(line.split()[:1] == ["arithmetic"] for line in lines) and any("base: " in line for line in lines)
    assert (run_dir / "probe.json").is_file() and "Did it forget anything?" in (run_dir / "report.md").read_text()


def test_probe_of_a_hub_task_offline_is_one_line(tmp_path, tiny_tokenizer, capsys):
    from tests.builders import make_finished_run

    run_dir, _ = make_finished_run(tmp_path, tiny_tokenizer)
    assert cli.main(["probe", run_dir.name, "--runs-dir", str(tmp_path), "--tasks", "arc_easy"]) == 2
    err = capsys.readouterr().err.strip()  # no model loader was injected: it fails before loading any model
    assert err.startswith("error: Task 'arc_easy' needs its data from the Hugging Face Hub") and "\n" not in err


def test_ctrl_c_stops_the_probe_and_saves_nothing(tmp_path, tiny_tokenizer, tiny_loader, capsys):
    from tests.builders import make_finished_run

    run_dir, _ = make_finished_run(tmp_path, tiny_tokenizer)
    calls = []

    def interrupt_on_third_batch(*_):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    def loader(settings, token=None):
        loaded = tiny_loader(settings, token=token)
        loaded.model.get_input_embeddings().register_forward_pre_hook(interrupt_on_third_batch)
        return loaded

    assert cli.main(["probe", run_dir.name, "--runs-dir", str(tmp_path)], model_loader=loader) == 130
    assert "nothing was saved" in capsys.readouterr().err and not (run_dir / "probe.json").exists()
