"""The Compare tab's "Judge the answers" panel through its named endpoints (gradio_client), with a real
OpenAI-compatible server on 127.0.0.1 as the judge."""
from __future__ import annotations

import time

import pytest
from gradio_client import Client

from tests.browser_utils import free_port
from tests.evaluate.test_judge import compared_run
from tests.judge_server import JudgeServer, closed_port_url
from tests.test_secrets import files_holding
from tests.tiny import make_tiny_tokenizer, tiny_loader

KEY = "sk-FAKEui0123456789SECRETjudge"


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio with the tiny model and four compared runs (one per test that writes a judging; the last with a
    prompt-only baseline)."""
    from app import build_app, launch_kwargs

    root = tmp_path_factory.mktemp("runs")
    run_ids = []
    for _ in range(4):
        run_ids.append(compared_run(root).name)
        time.sleep(1.1)  # run ids carry the second they were made
    with_baseline(root / run_ids[-1])
    tokenizer = make_tiny_tokenizer()
    demo = build_app(model_loader=tiny_loader, tokenizer_loader=lambda s, token=None: tokenizer, runs_root=root)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **launch_kwargs())
    yield url, root, run_ids
    demo.close()


def with_baseline(run_dir) -> None:
    """Give the run's saved comparison a prompt-only baseline that answers like the base model but gets row 0 right."""
    from studio.evaluate.baseline_record import score_baseline
    from studio.evaluate.comparison import load_comparison, save_comparison
    from studio.evaluate.generation import Answer

    comparison = load_comparison(run_dir)
    texts = [row.reference if i == 0 else row.base for i, row in enumerate(comparison.rows)]
    comparison.baseline = score_baseline(comparison.rows, [Answer(t, t, 1, "eos") for t in texts], 2, "2-shot")
    save_comparison(run_dir, comparison)


def test_an_endpoint_judge_shows_the_win_rate_and_every_verdict(studio):
    url, root, (run_id, *_) = studio
    c = Client(url, verbose=False)
    with JudgeServer() as server:
        html, table = c.predict(run_id=run_id, backend="endpoint", endpoint=server.url, model="qwen", api_key=KEY,
                                api_name="/judge")
    assert len(server.requests) == 16 and server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert "A judge preferred the tuned answer over the base one in 75% [95% CI " in html
    assert "agreeing with itself across both orders on 100%" in html and "tuned won 6, 1 ties, 1 lost" in html
    assert "saved in the run folder&#x27;s judge.json" in html
    assert table["headers"] == ["#", "Instruction", "Base shown first", "Tuned shown first"]
    assert len(table["data"]) == 8 and table["data"][0][1:] == ["Task 0", "tuned", "tuned"]
    assert table["data"][6][2:] == ["base", "base"]
    assert (root / run_id / "judge.json").is_file() and files_holding(root, KEY) == []
    saved_html, saved_table = c.predict(run_id, api_name="/saved_judge")
    assert saved_html == html and saved_table["data"] == table["data"]


def test_stop_keeps_the_pairs_judged(studio):
    url, root, (_, run_id, *_) = studio
    c = Client(url, verbose=False)

    def slow(prompt: str, n: int) -> str:
        time.sleep(0.3)
        return "tie"

    with JudgeServer(reply=slow) as server:
        job = c.submit(run_id=run_id, backend="endpoint", endpoint=server.url, api_name="/judge")
        deadline = time.monotonic() + 60  # stop once the first pair has its two verdicts (slow under load)
        while len(server.requests) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        c.predict(api_name="/stop_judge")
        html, table = job.result(timeout=60)
    assert "Stopped after " in html and " of 8 pairs" in html and 0 < len(table["data"]) < 8


def test_an_unreachable_endpoint_or_a_model_without_a_chat_template_is_one_sentence(studio):
    url, root, (*_, run_id, _) = studio
    c = Client(url, verbose=False)
    endpoint = closed_port_url()
    with pytest.raises(Exception, match=f"The judge endpoint at {endpoint}/v1/chat/completions cannot be reached"):
        c.predict(run_id=run_id, backend="endpoint", endpoint=endpoint, api_key=KEY, api_name="/judge")
    with pytest.raises(Exception, match=r"The judge model tiny/base has no chat template; choose an instruction-tuned"):
        c.predict(run_id=run_id, backend="transformers", local_model="tiny/base", api_name="/judge")
    assert not (root / run_id / "judge.json").exists() and (root / run_id / "comparison.json").is_file()
    assert c.predict(run_id, api_name="/saved_judge")[0] == ""


def test_the_tuned_answers_are_judged_against_the_prompt_only_baseline_and_the_headline_carries_it(studio):
    url, root, (*_, run_id) = studio
    c = Client(url, verbose=False)
    with JudgeServer() as server:
        html, table = c.predict(run_id=run_id, backend="endpoint", endpoint=server.url, opponent="baseline",
                                api_name="/judge")
    sentence = "A judge preferred the tuned answer over the prompt-only baseline&#x27;s in 62% [95% CI "
    assert sentence in html and "tuned won 5, 2 ties, 1 lost" in html
    assert table["headers"] == ["#", "Instruction", "Baseline shown first", "Tuned shown first"]
    assert table["data"][0][2:] == ["tie", "tie"] and table["data"][6][2:] == ["baseline", "baseline"]
    scores = c.predict(run_id, api_name="/saved_comparison")[0]  # what Compare shows after the judge
    assert sentence in scores and ">Judge: tuned vs prompt-only baseline<" in scores
    report = (root / run_id / "report.html").read_text(encoding="utf-8")
    assert sentence in report and "against the prompt-only baseline." in report
