"""`python -m studio judge`: an endpoint or a local chat model judges a compared run; the last line is the verdict."""
from __future__ import annotations

from studio import cli
from studio.evaluate.judge_record import load_judge
from studio.publish.scorecard import judge_sentence
from studio.runs import RunFolder
from tests.evaluate.test_judge import ANSWERS, chat_loader, compared_run
from tests.judge_server import JudgeServer, closed_port_url
from tests.test_secrets import files_holding

KEY = "sk-FAKEcli0123456789SECRETjudge"


def test_an_endpoint_judge_ends_with_the_win_rate_interval_and_agreement(tmp_path, monkeypatch, capsys):
    root = tmp_path / "runs"
    run_dir = compared_run(root)
    monkeypatch.setenv("JUDGE_KEY", KEY)
    with JudgeServer() as server:
        code = cli.main(["judge", run_dir.name, "--endpoint", server.url, "--judge-model", "qwen", "--api-key-env",
                         "JUDGE_KEY", "--runs-dir", str(root)])
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert code == 0 and server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert lines[0].startswith(f"Judging run {run_dir.name} with qwen at {server.url}/v1/chat/completions")
    assert "  8/8 pairs" in lines
    assert "  8 pairs scored of 8 judged: tuned won 6, 1 ties, 1 lost; 0 unreadable replies" in lines
    assert lines[-2] == f"saved to {run_dir / 'judge.json'}"
    assert lines[-1] == judge_sentence(load_judge(run_dir).summary())
    assert lines[-1].startswith("A judge preferred the tuned answer over the base one in 75% [95% CI ")
    assert lines[-1].endswith("of 8 pairs (1 ties), agreeing with itself across both orders on 100%.")
    assert KEY not in out.out + out.err and files_holding(tmp_path, KEY) == []


def test_judging_rewrites_the_report_with_the_judge_as_the_ui_does(tmp_path, capsys):
    root = tmp_path / "runs"
    run_dir = compared_run(root)
    folder = RunFolder(run_dir)
    assert not folder.report_html.exists() and not folder.report_md.exists()
    with JudgeServer() as server:
        assert cli.main(["judge", run_dir.name, "--endpoint", server.url, "--runs-dir", str(root)]) == 0
    verdict = capsys.readouterr().out.strip().splitlines()[-1]
    html, md = (p.read_text(encoding="utf-8") for p in (folder.report_html, folder.report_md))
    assert verdict.startswith("A judge preferred the tuned answer over the base one in 75% [95% CI ")
    assert verdict in md and verdict in html
    assert "Judge: tuned won 6, 1 ties, 1 lost of 8 pairs against the base model." in html


def test_a_judge_that_disagrees_with_itself_ends_saying_it_is_too_weak(tmp_path, capsys):
    root = tmp_path / "runs"
    run_dir = compared_run(root)
    with JudgeServer(reply=lambda prompt, n: "A") as server:
        assert cli.main(["judge", run_dir.name, "--endpoint", server.url, "--runs-dir", str(root)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "The judge gave the same verdict in both answer orders for only 0% of pairs: too weak to trust, so it "
        "decides nothing here.")


def test_a_local_chat_model_judges_through_transformers(tmp_path, capsys):
    root = tmp_path / "runs"
    run_dir = compared_run(root, ANSWERS[:2])  # the tiny model's 32-token replies are the slow part
    load, names = chat_loader()
    assert cli.main(["judge", run_dir.name, "--judge-model", "me/chat-judge", "--runs-dir", str(root)],
                    model_loader=load) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert names == ["me/chat-judge"] and last == judge_sentence(load_judge(run_dir).summary())
    assert len(load_judge(run_dir).verdicts) == 4


def test_no_judge_or_an_unreachable_one_is_one_error_line(tmp_path, capsys):
    root = tmp_path / "runs"
    run_dir = compared_run(root)
    assert cli.main(["judge", run_dir.name, "--runs-dir", str(root)]) == 2
    assert capsys.readouterr().err == ("error: Name a judge: --endpoint URL (an OpenAI-compatible server) or "
                                       "--judge-model HUB_ID_OR_FOLDER.\n")
    url = closed_port_url()
    assert cli.main(["judge", run_dir.name, "--endpoint", url, "--runs-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: The judge endpoint at {url}/v1/chat/completions cannot be reached or did not answer in "
                   "JSON; check that the server is running and the URL is right.\n")
    assert not (run_dir / "judge.json").exists()
