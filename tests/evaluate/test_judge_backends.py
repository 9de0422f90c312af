"""Judge backends over real HTTP: an OpenAI-compatible server on 127.0.0.1 (tests/judge_server.py), the key sent as a
Bearer header and never written, and the one sentence for a server that cannot be reached or refuses."""
from __future__ import annotations

import re

import pytest

from studio.errors import SettingsError
from studio.evaluate.judge import judge_run
from studio.evaluate.judge_backends import EndpointJudge, JudgeSpec, ProvidersJudge, chat_url, make_judge, shown_url
from studio.evaluate.judge_record import JudgeUnavailable, load_judge
from studio.publish.scorecard import JUDGE_MIN_AGREEMENT
from studio.runs import RunFolder
from tests.evaluate.test_judge import ANSWERS, compared_run
from tests.judge_server import JudgeServer, closed_port_url
from tests.test_secrets import files_holding

KEY = "sk-FAKEkey0123456789SECRETjudge"


def test_an_endpoint_judges_both_orders_with_the_key_as_a_bearer_header_only(tmp_path):
    run_dir = compared_run(tmp_path / "runs")
    with JudgeServer() as server:
        judge = make_judge(JudgeSpec(backend="endpoint", endpoint=server.url, model="qwen-judge"), api_key=KEY)
        result = judge_run(run_dir, judge, JUDGE_MIN_AGREEMENT)
    assert isinstance(judge, EndpointJudge) and len(server.requests) == 2 * len(ANSWERS)
    assert {r["path"] for r in server.requests} == {"/v1/chat/completions"}
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in server.requests)
    body = server.requests[0]["body"]
    assert body["model"] == "qwen-judge" and body["temperature"] == 0.0 and body["max_tokens"] == 32
    first, second = (r["body"]["messages"][0]["content"] for r in server.requests[:2])
    assert "### Answer A:\nparis is" in first and "### Answer A:\nPARIS" in second  # the same pair, both orders
    replies = [v.reply for v in result.verdicts]
    assert len({re.sub(r"\b(A|B|C|tie)\b", "X", reply) for reply in replies}) == 4  # four wordings, all read
    summary = result.summary()
    assert summary["unreadable"] == 0
    assert (summary["win_rate"], summary["pairs"], summary["ties"], summary["agreement"]) == (0.75, 8, 1, 1.0)
    assert summary["low"] < 0.75 < summary["high"] and summary["trusted"]
    saved = load_judge(run_dir)
    assert saved.judge == f"qwen-judge at {server.url}/v1/chat/completions" and saved.backend == "endpoint"
    assert [v.reply for v in saved.verdicts] == replies and saved.prompt.startswith("You are an impartial judge.")
    assert files_holding(tmp_path, KEY) == [] and KEY not in repr(saved)


def test_no_key_sends_no_authorization_and_no_name_sends_no_model(tmp_path):
    with JudgeServer() as server:
        judge_run(compared_run(tmp_path, ANSWERS[:1]), make_judge(JudgeSpec(backend="endpoint", endpoint=server.url)),
                  0.7)
    assert all("Authorization" not in r["headers"] and "model" not in r["body"] for r in server.requests)


def test_an_unreachable_endpoint_is_one_sentence_and_leaves_the_comparison_intact(tmp_path):
    run_dir = compared_run(tmp_path)
    folder = RunFolder(run_dir)
    before = folder.comparison_file.read_bytes()
    url = closed_port_url()
    judge = make_judge(JudgeSpec(backend="endpoint", endpoint=url, timeout_s=5), api_key=KEY)
    with pytest.raises(JudgeUnavailable) as info:
        judge_run(run_dir, judge, 0.7)
    assert str(info.value) == (f"The judge endpoint at {url}/v1/chat/completions cannot be reached or did not answer "
                               "in JSON; check that the server is running and the URL is right.")
    assert KEY not in str(info.value) and not folder.judge_file.exists()
    assert folder.comparison_file.read_bytes() == before


@pytest.mark.parametrize("status, words", [(401, "refused the request (HTTP 401); check the API key."),
                                           (404, "answered HTTP 404; check the URL and the model name."),
                                           (500, "answered HTTP 500; try again or choose another judge.")])
def test_a_refusing_endpoint_is_one_sentence(tmp_path, status, words):
    with JudgeServer(status=status) as server, pytest.raises(JudgeUnavailable) as info:
        judge_run(compared_run(tmp_path), make_judge(JudgeSpec(backend="endpoint", endpoint=server.url), KEY), 0.7)
    assert str(info.value) == f"The judge at {server.url}/v1/chat/completions {words}" and KEY not in str(info.value)


def test_endpoint_urls_and_settings():
    assert chat_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1/chat/completions"
    assert chat_url("http://127.0.0.1:11434/v1/") == "http://127.0.0.1:11434/v1/chat/completions"
    assert chat_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    assert shown_url("https://me:secret@host:8443/v1?key=x") == "https://host:8443/v1"
    for bad, words in [({"backend": "endpoint", "endpoint": "127.0.0.1:8080"}, "must be an http"),
                       ({"backend": "transformers"}, "Name the judge model"), ({"backend": "gpt"}, "must be one of")]:
        with pytest.raises(SettingsError, match=words):
            JudgeSpec(**bad)


def test_inference_providers_speak_the_same_protocol_with_the_token(tmp_path, monkeypatch):
    from huggingface_hub import constants

    # InferenceClient also takes a server URL as the model: here the local server stands in for a provider.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with JudgeServer() as server:
        judge = make_judge(JudgeSpec(backend="providers", model=server.url), api_key=KEY)
        result = judge_run(compared_run(tmp_path, ANSWERS[:2]), judge, 0.7)
    assert isinstance(judge, ProvidersJudge) and len(server.requests) == 4
    assert all(r["headers"]["authorization"] == f"Bearer {KEY}" for r in server.requests)
    assert result.summary()["win_rate"] == 1.0 and files_holding(tmp_path, KEY) == []


def test_inference_providers_offline_are_one_sentence(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    judge = make_judge(JudgeSpec(backend="providers", model="meta-llama/Llama-3.1-8B-Instruct"), api_key=KEY)
    with pytest.raises(JudgeUnavailable, match=r"^Hugging Face Inference Providers cannot be reached from this "
                                               r"machine; use a local judge model or an endpoint instead\.$"):
        judge.ask("hello")
