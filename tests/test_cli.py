"""The command line: inspect, train -> compare -> report on a tiny model, runs, export; errors exit 2 with one line."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from studio import cli


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("train", "demo", "warmup", "compare", "probe", "inspect", "export", "verify", "push", "presets",
                    "runs"):
        assert command in out


def test_inspect_prints_shape_and_a_rendered_example(capsys):
    assert cli.main(["inspect", "sample:word_tasks"]) == 0
    out = capsys.readouterr().out
    assert "shape:   alpaca" in out and "### Instruction:" in out and "rows:" in out


def test_inspect_bad_file_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text('[{"instruction": "a", "output": "b"},]')
    assert cli.main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: File 'broken.json' is not valid JSON") and "\n" not in err


def test_inspect_shows_the_summary_and_rows_per_reason(capsys):
    messy = Path(__file__).parent / "data" / "messy" / "sharegpt_irregular.json"
    assert cli.main(["inspect", str(messy), "--keep-truncated", "--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert "rows:    Kept 9 of 12 rows: 1 repaired (leading assistant turn)" in out
    assert "\nleading assistant turn: 1 repaired\n  row 2 starts with 1 turn before the first user turn" in out
    assert "\nunknown role: 1 skipped\n  row 11 has a turn (2) with the unknown role 'wizard'" in out
    assert "chats:   1 multi-turn chat; template 'chatml' trains every assistant turn." in out
    # The multi-turn example is shown, both of its answers as trained pieces.
    assert "example 9 rendered with template 'chatml'" in out and out.count("----- completion (trained) -----") == 2


def test_inspect_single_turn_template_on_chats_says_only_the_last_answer_is_trained(capsys):
    messy = Path(__file__).parent / "data" / "messy" / "sharegpt_irregular.json"
    assert cli.main(["inspect", str(messy), "--keep-truncated", "--template", "alpaca"]) == 0
    assert "is single-turn: earlier turns are flattened into the prompt and only the last answer is trained" in (
        capsys.readouterr().out)


def test_inspect_truncated_file_offers_the_flag_and_strict_refuses(capsys):
    messy = Path(__file__).parent / "data" / "messy" / "sharegpt_irregular.json"
    assert cli.main(["inspect", str(messy)]) == 2
    err = capsys.readouterr().err
    assert "after 12 complete records" in err and "hint: to keep the 12 complete records, add --keep-truncated" in err
    assert cli.main(["inspect", str(messy), "--keep-truncated", "--strict"]) == 2
    assert "strict mode refuses a file with irregular rows" in capsys.readouterr().err


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
    assert "step 1/2" in out and "Before / after instruction tuning" in out
    assert "Training on 1 CPU thread, pinned" in out
    interval = r"\[95% CI [+-][\d.]+, [+-][\d.]+\], (not )?significant"
    assert re.search(r"\n  BLEU +[\d.]+ -> +[\d.]+ +[+-][\d.]+ " + interval, out)
    assert re.search(r"\n  Exact match .*\(\d/4 -> \d/4 answers\)", out) and "\n  ROUGE-L " in out
    assert re.search(r"\n  Per example: \d better, \d the same, \d worse by sentence BLEU", out)
    assert '\n  Answers cut at the first "\\n### " or at <eos>, the same rule for base and tuned' in out
    # The answer loss beside the scores (its label padded like the others), the cut count and the answer length.
    assert re.search(r"\n  Answer perplexity +[\d.]+ -> +[\d.]+ +[+-][\d.]+ " + interval.replace(
        "(not )?significant", "(not significant|significant|negligible)"), out)
    assert re.search(r"\n  BLEU {15}", out)
    assert re.search(r"\n  Per example: \d better, \d the same, \d worse by answer loss", out)
    loops = r"( \(\d stuck in a loop\))?"
    assert re.search(rf"\n  Cut at the length limit \((\d+) tokens\): \d/4 base{loops}, \d/4 tuned{loops} answers", out)
    assert re.search(r"\n  Answer length: answers up to \d+ tokens: ", out)
    # The prompt-only baseline, scored against the tuned model with its interval.
    assert re.search(r"\n  prompting alone \(\d-shot\): BLEU [\d.]+; tuned [\d.]+, [+-][\d.]+ " + interval.replace(
        "(not )?significant", "(not significant|significant|negligible)"), out)
    run_dir = next(root.iterdir())
    assert json.loads((run_dir / "run.json").read_text())["threads"] == 1
    assert (run_dir / "report.html").is_file() and (run_dir / "comparison.jsonl").is_file()
    summary = json.loads((run_dir / "comparison.json").read_text())
    assert summary["base"]["n"] == 4 and summary["answer_loss"]["planned"] == 4 and summary["answer_length"] >= 4

    assert cli.main(["runs", "--runs-dir", str(root)]) == 0
    assert run_dir.name in capsys.readouterr().out
    assert cli.main(["compare", run_dir.name, "--runs-dir", str(root), "--limit", "2", "--no-baseline",
                     "--set", "generation.max_new_tokens=3"], model_loader=tiny_loader) == 0
    out = capsys.readouterr().out
    assert "\n  Prompting alone was not measured: it is turned off" in out
    assert "on 2 held-out examples" in out and "95% CI" in out and "Answers cut at" in out
    assert "\n  Answer perplexity " in out and "Cut at the length limit (" in out
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


def test_train_on_chat_data_picks_the_chat_template(tmp_path, capsys):
    from studio.cli import build_parser
    from studio.cli_train import _with_data_template, settings_from_args

    messy = str(Path(__file__).parent / "data" / "messy" / "openai_tools.jsonl")
    args = build_parser().parse_args(["train", "--data", messy])
    assert _with_data_template(settings_from_args(args), args).data.template == "chat"
    assert "Chat-shaped data: training every assistant turn" in capsys.readouterr().out
    args = build_parser().parse_args(["train", "--data", messy, "--template", "alpaca"])
    assert _with_data_template(settings_from_args(args), args).data.template == "alpaca"
    flat = build_parser().parse_args(["train", "--data", str(Path(messy).with_name("dolly.jsonl"))])
    assert _with_data_template(settings_from_args(flat), flat).data.template == "instruction_output"


def test_train_applies_any_template_the_data_recommends_unless_one_was_chosen(capsys):
    from studio.cli import build_parser
    from studio.cli_train import _with_data_template, settings_from_args

    def template(*argv: str) -> str:
        args = build_parser().parse_args(["train", "--data", "sample:product_docs", *argv])
        return _with_data_template(settings_from_args(args), args).data.template

    assert template() == "question_answer"  # the sample's own, as the Data tab and the demo pick it
    assert "Using the 'question_answer' template this data suits" in capsys.readouterr().out
    assert template("--template", "alpaca") == "alpaca"
    assert template("--set", "data.template=chatml") == "chatml"
    # A preset that sets the template chose it, even when it sets the default one (codealpaca-gptneo does).
    assert template("--preset", "codealpaca-gptneo") == "instruction_output"
    assert capsys.readouterr().out == ""


def test_inspect_renders_with_the_template_the_data_recommends(capsys):
    assert cli.main(["inspect", "sample:product_docs"]) == 0
    assert "rendered with template 'question_answer'" in capsys.readouterr().out
    assert cli.main(["inspect", "sample:product_docs", "--template", "alpaca"]) == 0
    assert "rendered with template 'alpaca'" in capsys.readouterr().out


def test_export_gguf_prints_the_file_last_and_verify_checks_it(runs_dir, tiny_tokenizer, tiny_loader, capsys):
    from pathlib import Path

    from tests.builders import make_finished_run

    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, compare=False)
    args = ["--runs-dir", str(runs_dir)]
    assert cli.main(["export", run_dir.name, "--gguf", "--verify", *args], model_loader=tiny_loader) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert Path(lines[-1]).is_file() and lines[-1].endswith(f"{run_dir.name}-f16.gguf")
    assert "f16 GGUF: 2/2 answers equal the studio's tuned answers" in lines[-2]
    assert any(line.startswith("Ollama Modelfile:") for line in lines)

    assert cli.main(["verify", run_dir.name, "--quant", "q8_0", "--limit", "1", *args], model_loader=tiny_loader) == 0
    assert "q8_0 GGUF:" in capsys.readouterr().out.strip().splitlines()[-1]
    assert cli.main(["export", run_dir.name, "--merged", "--zip", *args], model_loader=tiny_loader) == 0
    assert capsys.readouterr().out.strip().endswith(f"{run_dir.name}-merged.zip")


def test_library_warnings_are_filtered_but_not_all_of_them():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli.quiet_library_warnings()  # its filters go in front of "always"
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
        warnings.warn("something the user should see", FutureWarning)
    assert [str(w.message) for w in caught] == ["something the user should see"]


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


def test_demo_trains_compares_and_prints_the_best_examples(tmp_path, tiny_loader, capsys):
    root = tmp_path / "runs"
    code = cli.main(["demo", "--runs-dir", str(root), "--set", "train.max_steps=2", "--set", "train.batch_size=4",
                     "--set", "data.max_test_examples=4", "--set", "generation.max_new_tokens=4"],
                    model_loader=tiny_loader)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "step 2/2" in out and "Comparing base vs tuned on 4 held-out examples" in out
    assert "Before / after instruction tuning" in out and re.search(r"\n(Where tuning helped most|Three examples .*):\n  1. ", out)
    assert out.count("     before: ") == 3 and out.count("     after:  ") == 3
    run_dir = next(root.iterdir())
    assert f"  report      {run_dir / 'report.html'}" in out


def test_warmup_prepares_the_embedded_cache_once_printing_its_phases(tmp_path, monkeypatch, capsys):
    from studio.model import embedded

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    built = []

    def fake_build(out: Path, phase) -> None:
        for key in ("assemble", "tokenizer", "model", "save"):
            phase(key)
        (out / "config.json").write_text("{}")
        (out / "tokenizer.json").write_text("{}")
        built.append(out)

    monkeypatch.setattr(embedded, "_build_embedded_copy", fake_build)
    assert cli.main(["warmup"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Preparing the embedded model (first start only, about ")
    assert "reading the 262,144-token vocabulary" in out and "The embedded model is ready" in out
    assert cli.main(["warmup"]) == 0 and len(built) == 1
    assert "already prepared" in capsys.readouterr().out


def test_inspect_counts_held_out_prompts_that_look_like_training_prompts(tmp_path, capsys):
    assert cli.main(["inspect", "sample:word_tasks"]) == 0
    assert "split:   320 train, 48 held out (default settings); no held-out prompt looks like a training prompt." \
        in capsys.readouterr().out
    # Every question twice, the copy differing only in case and punctuation: held-out copies are repeats.
    questions = [f"How do I reset the password of account number {i} when the recovery email bounces?"
                 for i in range(20)]
    rows = [{"instruction": q, "output": f"Answer {i}."} for i, q in enumerate(questions)]
    rows += [{"instruction": q.upper().rstrip("?") + "!", "output": f"Same answer {i}."} for i, q in enumerate(questions)]
    data = tmp_path / "twice.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["inspect", str(data)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("split:"))
    assert re.fullmatch(r"split:   36 train, 4 held out \(default settings\); [1-4] held-out prompts? looks? like "
                        r"(a )?training prompts? \(left out of the headline\)\.", line), line


def test_the_summary_scores_what_the_headline_scores_and_says_what_it_left_out():
    from studio.cli_compare import summary_lines
    from tests.publish.test_scorecard import overlapping_comparison

    lines = summary_lines(overlapping_comparison())
    assert "left out of the headline" in lines[1] and "on 4 held-out examples" in lines[1]
    assert any("(0/4 -> 2/4 answers)" in line for line in lines)


def test_the_summary_counts_the_cut_answers_stuck_in_a_loop_apart():
    from studio.cli_compare import summary_lines
    from tests.publish.test_scorecard import long_comparison

    cmp = long_comparison()
    cmp.rows[0].tuned = "I'm sorry, I'm sorry. " * 12
    assert "  Cut at the length limit (128 tokens): 0/2 base, 1/2 tuned (1 stuck in a loop) answers" in summary_lines(cmp)
