"""After the first run, through the named endpoints (gradio_client, tiny model): stop Compare and keep its rows,
stream and stop the free prompt and the chat, chat while a job trains, watch it learn, Resume, Train more and
compare two runs. Each generated token is slowed a little so a stream can be stopped mid-answer."""
from __future__ import annotations

import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from studio import runs
from studio.evaluate.comparison import load_comparison
from tests.browser_utils import launch_studio

ACTIVE = ("queued", "preparing", "training", "saving")
# 8 steps with 4 snapshots, a validation split with eval loss every 2 steps, 4 held-out rows answered one per batch.
RUN = {"train_max_steps": 8, "train_batch_size": 4, "data_max_test_examples": 4, "data_validation_fraction": 0.2,
       "train_eval_steps": 2, "train_save_steps": 2, "generation_batch_size": 1, "generation_max_new_tokens": 6}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    demo, url = launch_studio(root, step_delay=0.02, generate_delay=0.03)
    yield url, root
    demo.close()


def client(url: str) -> Client:
    return Client(url, verbose=False)


def wait_for_job(c: Client, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while (details := c.predict(api_name="/progress")[5])["status"] in ACTIVE:
        assert time.monotonic() < deadline, details
        time.sleep(0.3)
    return details


def train_run(c: Client, **overrides) -> str:
    c.predict(api_name="/load_data")
    c.predict(**{**RUN, **overrides}, api_name="/train")
    details = wait_for_job(c)
    assert details["status"] == "completed", details
    return details["run_id"]


@pytest.fixture(scope="module")
def trained(studio) -> tuple[Client, str]:
    c = client(studio[0])
    return c, train_run(c)


def wait_for_progress(job, text: str, timeout: float = 60) -> None:
    """Until the job's progress bar shows `text` (e.g. the tuned model answering its first batch)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        units = job.status().progress_data or []
        if any(text in (u.desc or "") and (u.index or 0) >= 1 for u in units):
            return
        time.sleep(0.05)
    raise AssertionError(f"no progress {text!r}: {job.status()}")


def test_every_new_action_is_a_named_endpoint(studio):
    names = set(client(studio[0]).view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/resume_run", "/train_more", "/compare_runs", "/stop_compare", "/stop_ask", "/chat", "/stop_chat",
            "/clear_chat", "/list_chat_runs", "/score_snapshots", "/stop_snapshots", "/snapshot_answers",
            "/choose_snapshot", "/restore_final_adapter", "/timeline"} <= names


def test_stop_compare_keeps_the_examples_both_models_answered(studio, trained):
    c, run_id = trained
    job = c.submit(run_id=run_id, **{k: v for k, v in RUN.items() if k.startswith("generation")}, api_name="/compare")
    wait_for_progress(job, "Tuned model answering")
    c.predict(api_name="/stop_compare")
    cards = job.result()[0]
    assert "Stopped after " in cards and " of 4 examples; scores cover " in cards
    saved = load_comparison(studio[1] / run_id)
    assert saved.partial and 1 <= len(saved.rows) < 4 and saved.planned == 4


def test_the_free_prompt_streams_and_stops_mid_answer(trained):
    c, run_id = trained
    job = c.submit(run_id=run_id, instruction="Sort the words.", input="b a", generation_max_new_tokens=60,
                   api_name="/ask")
    deadline = time.monotonic() + 30
    while not job.outputs() and time.monotonic() < deadline:  # the first streamed update
        time.sleep(0.05)
    c.predict(api_name="/stop_ask")
    base, tuned = job.result()
    assert base["label"].endswith("(adapter disabled) · stopped") and tuned["label"].endswith("· stopped")
    assert len(job.outputs()) >= 1 and tuned["value"] == ""


def test_chat_is_multi_turn_streamed_and_says_which_weights_answered(trained):
    c, run_id = trained
    job = c.submit(run_id=run_id, message="Hello", system="Be brief.", chat_max_new_tokens=5, api_name="/chat")
    box, base, tuned, status = job.result()
    assert len(job.outputs()) > 3  # one update per token
    # The box is emptied once, as the message is taken; later updates leave it as the visitor has it (a next message).
    assert job.outputs()[0][0] == "" and box == {"__type__": "update"}
    assert base["label"].startswith("Base: ") and tuned["label"] == f"Tuned: run {run_id} adapter"
    assert [m["role"] for m in base["value"]] == ["user", "assistant"]
    assert "**Tuned: run" in status and "sampled at temperature 0.7" in status
    assert "This template is single-turn: earlier turns reach the model as a User/Assistant transcript." in status
    _, base, tuned, _ = c.predict(run_id=run_id, message="And again?", base_chat=base["value"],
                                  tuned_chat=tuned["value"], chat_max_new_tokens=5, chat_do_sample=False,
                                  api_name="/chat")
    assert [m["role"] for m in tuned["value"]] == ["user", "assistant"] * 2
    assert tuned["value"][2]["content"][0]["text"] == "And again?"
    assert c.predict(api_name="/clear_chat")[:2] == ([], [])


def test_stop_chat_mid_stream_marks_the_answer(trained):
    c, run_id = trained
    job = c.submit(run_id=run_id, message="Tell me a long story", chat_max_new_tokens=80, api_name="/chat")
    deadline = time.monotonic() + 30
    while len(job.outputs()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    c.predict(api_name="/stop_chat")
    _, base, tuned, status = job.result()
    assert base["value"][-1]["content"][0]["text"].endswith("[stopped]") and "stopped" in status


def test_watch_it_learn_scores_every_snapshot_and_chooses_by_validation(studio, trained):
    c, run_id = trained
    plot, slider, answers, note = c.predict(run_id=run_id, generation_max_new_tokens=3, api_name="/score_snapshots")
    assert plot is not None and slider["maximum"] == 4 and slider["value"] == 4  # base + snapshots at 2, 4, 6, 8
    assert "Answers of step 8 of 8 (the last step)" in answers and note.startswith("Best snapshot by validation BLEU")
    base_view = c.predict(run_id=run_id, index=0, api_name="/snapshot_answers")
    assert "the base model (step 0, adapter disabled)" in base_view
    plot, slider, answers, note = c.predict(run_id=run_id, criterion="eval_loss", api_name="/choose_snapshot")
    chosen = runs.read_run(studio[1], run_id).adapter_choice["step"]
    assert f"The run uses its **step-{chosen} snapshot**" in note and "in use as the run's adapter" in answers
    other = client(studio[0])  # another visitor may look, not change
    with pytest.raises(AppError, match="belongs to another session"):
        other.predict(run_id=run_id, api_name="/restore_final_adapter")
    note = c.predict(run_id=run_id, api_name="/restore_final_adapter")[3]
    assert "snapshot**" not in note and runs.read_run(studio[1], run_id).adapter_choice is None
    assert c.predict(run_id=run_id, api_name="/timeline")[1]["maximum"] == 4  # saved, shown again on run change


def test_chat_stays_usable_while_a_job_trains(studio, trained):
    _, run_id = trained
    c = client(studio[0])
    c.predict(api_name="/load_data")
    c.predict(train_max_steps=400, train_batch_size=2, api_name="/train")
    try:
        _, _, tuned, _ = c.predict(run_id=run_id, message="Hi", chat_max_new_tokens=4, api_name="/chat")
        assert tuned["value"][-1]["role"] == "assistant"
        assert c.predict(api_name="/progress")[5]["status"] in ACTIVE  # answered while the job still trains
    finally:
        c.predict(api_name="/stop")
    assert wait_for_job(c)["status"] == "stopped"


def test_resume_a_stopped_run_from_the_runs_tab(studio):
    c = client(studio[0])
    c.predict(api_name="/load_data")
    c.predict(train_max_steps=300, train_batch_size=2, train_save_steps=2, api_name="/train")
    deadline = time.monotonic() + 60
    while c.predict(api_name="/progress")[5]["step"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run_id = c.predict(api_name="/progress")[5]["run_id"]
    c.predict(api_name="/stop")
    stopped = wait_for_job(c)
    assert stopped["status"] == "stopped" and stopped["step"] < 300
    with pytest.raises(AppError, match="belongs to another session, so it cannot be resumed from here"):
        client(studio[0]).predict(run_id=run_id, api_name="/resume_run")
    view = c.predict(run_id=run_id, api_name="/resume_run")
    assert view[-2]["run_id"] == run_id
    deadline = time.monotonic() + 60  # a step past the stop first (resuming loads the checkpoint: slow under load)
    while c.predict(api_name="/progress")[5]["step"] <= stopped["step"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    c.predict(api_name="/stop")  # stopped again: a resumed run stops like any other
    again = wait_for_job(c)
    assert again["status"] == "stopped" and again["step"] > stopped["step"]
    steps = [r["step"] for r in runs.RunFolder(studio[1] / run_id).read_metrics() if r.get("loss") is not None]
    assert steps == list(range(1, again["step"] + 1))  # the loss curve continued where it stopped


def test_train_more_then_compare_the_two_runs(studio):
    c = client(studio[0])
    parent = train_run(c, data_validation_fraction=0.0, train_eval_steps=0)
    view = c.predict(run_id=parent, amount=2, unit="steps", api_name="/train_more")
    child = view[-2]["run_id"]
    assert child != parent and wait_for_job(c)["status"] == "completed"
    info = runs.read_run(studio[1], child)
    assert (info.parent_run, info.step) == (parent, 2)
    headline, plot, scores, settings = c.predict(run_a=parent, run_b=child, api_name="/compare_runs")
    assert f"No held-out scores for run {parent} and {child} yet: open each in Compare" in headline
    assert [row[0] for row in settings["data"]] == ["train.max_steps"]
    for run_id in (parent, child):
        c.predict(run_id=run_id, generation_max_new_tokens=3, api_name="/compare")
    headline, plot, scores, settings = c.predict(run_a=parent, run_b=child, api_name="/compare_runs")
    assert f"Run B ({child}) tuned BLEU" in headline and "Both runs were compared on the same 4 held-out" in headline
    assert [row[0] for row in scores["data"]] == ["BLEU", "chrF", "ROUGE-L", "Exact match"]
    assert len(plot["plot"]) > 100
    with pytest.raises(AppError, match="Choose two different runs"):
        c.predict(run_a=parent, run_b=parent, api_name="/compare_runs")
