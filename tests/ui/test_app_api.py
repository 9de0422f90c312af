"""The studio's named endpoints, driven with gradio_client against an in-process server and a tiny model."""
from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from studio.evaluate.comparison import load_comparison
from studio.presets import PRESET_DIR, read_preset
from studio.runs import RunFolder, create_run, update_run
from studio.settings import StudioSettings
from tests.browser_utils import launch_studio
from tests.builders import make_finished_run, write_old_comparison
from tests.tiny import make_tiny_tokenizer

# Tiny and quick: 3 optimiser steps on the tiny model, 4 held-out prompts with 6 new tokens each.
QUICK_TRAIN = {"train_max_steps": 3, "train_batch_size": 4, "data_max_test_examples": 4}
QUICK_GEN = {"generation_max_new_tokens": 6}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio on a free localhost port with the tiny model injected; yields (url, presets folder, runs folder)."""
    runs, presets = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("presets")
    for preset in PRESET_DIR.glob("*.yaml"):
        shutil.copy(preset, presets)
    demo, url = launch_studio(runs, preset_dir=presets)
    yield url, presets, runs
    demo.close()


def client(url: str) -> Client:
    """A fresh API client (its own session, so its own state)."""
    return Client(url, verbose=False)


def unchanged(value) -> bool:
    """True for an output /poll skipped because the page already shows it."""
    return isinstance(value, dict) and value.get("__type__") == "update"


def wait_for_job(c: Client, timeout: float = 240) -> dict:
    """Poll /poll as the page's timer does until the job leaves the active statuses; returns the status details."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        details = c.predict(api_name="/poll")[5]
        if details and not unchanged(details) and details["status"] not in ("queued", "preparing", "training",
                                                                             "saving"):
            return details
        time.sleep(0.5)
    raise AssertionError("training did not finish in time")


def test_main_actions_are_named_endpoints(studio):
    names = set(client(studio[0]).view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/load_data", "/remap", "/split", "/preview", "/lengths", "/inspect_model", "/load_preset",
            "/save_preset", "/train", "/stop", "/progress", "/poll", "/compare", "/ask", "/list_runs", "/list_adapters",
            "/delete_run", "/open_in_compare", "/saved_comparison", "/export_adapter", "/export_merged",
            "/export_merged_zip", "/export_gguf", "/verify_export", "/export_sizes", "/push_to_hub"} <= names


def test_load_preview_train_compare(studio):
    c = client(studio[0])
    shape, *_, counts, table, _template, _index, _problems = c.predict(api_name="/load_data")
    assert "detected shape" in shape and re.search(r"\d+ train", counts)
    assert len(table["data"]) == 20
    html, shown = c.predict(index=3, api_name="/preview")
    assert "tok-trained" in html and "tok-masked" in html and shown == 3
    figure, note, _suggestion, _size = c.predict(api_name="/lengths")
    assert figure is not None and "tokens" in note

    info = c.predict(api_name="/inspect_model")[0]
    assert "Parameters" in info and "Time / epoch" in info

    view = c.predict(**QUICK_TRAIN, api_name="/train")
    assert view[5]["status"] in ("queued", "preparing", "training", "saving", "completed")
    details = wait_for_job(c)
    assert details["status"] == "completed" and details["step"] == 3
    progress_html, figure, log, result, download, *_ = c.predict(api_name="/progress")
    assert "step 3 / 3" in progress_html and "loss" in log
    assert figure is not None and "saved" in result
    assert download["visible"] and download["value"].endswith(".zip")
    # /progress sent the whole view, so the page's next /poll has nothing to send.
    assert all(unchanged(value) for value in c.predict(api_name="/poll"))

    scores, _scores_fig, _delta_fig, table, raw, reports = c.predict(**QUICK_GEN, api_name="/compare")
    bleu = r'>BLEU</div><div class="value"><span class="before">[\d.]+</span> → [\d.]+</div>'
    interval = (r'<div class="sub">[+-]\d+\.\d \[95% CI [+-]\d+\.\d, [+-]\d+\.\d\]</div>'
                r'<span class="badge">(not )?significant')
    assert re.search(bleu + interval, scores)
    assert ">ROUGE-L<" in scores and ">Per example<" in scores and "held-out examples" in scores
    assert "Answers cut at the first &quot;\\n### &quot; or at &lt;eos&gt;, the same rule for base and tuned" in scores
    assert raw.count("<details>") == 4 and "Base <span>" in raw and "Tuned <span>" in raw
    assert len(table["data"]) == 4 and table["headers"][-1] == "Change"
    # The headline metric's card is the big one; the answer loss has its own card and per-example counts; the
    # answer length says why; every answer that ran into the limit is marked in the table, as saved.
    assert scores.count('class="card big') == 1 and ">Answer perplexity<" in scores
    assert ">Per example (answer loss)<" in scores and "Answer length: Answers up to " in scores
    saved = load_comparison(studio[2] / details["run_id"])
    mark = f" [cut at {saved.limit} tokens]"
    flagged = sorted((row.base_cut, row.tuned_cut) for row in saved.rows)
    assert sorted((row[2].endswith(mark), row[3].endswith(mark)) for row in table["data"]) == flagged
    # The prompt-only baseline ran (on by default when it fits its budget): its answers have a column.
    assert saved.baseline.ran and table["headers"][4] == f"Prompting alone ({saved.baseline.shots}-shot)"
    assert {r.rsplit(".", 1)[-1] for r in reports} == {"html", "md"}
    base, tuned = c.predict(instruction="Sort the words.", input="pear apple", **QUICK_GEN, api_name="/ask")
    assert base["label"] == "Base: Gemma 3 270M (adapter disabled)" and isinstance(base["value"], str)
    assert tuned["label"] == f"Tuned: run {details['run_id']} adapter" and isinstance(tuned["value"], str)

    runs_table, _ = c.predict(api_name="/list_runs")
    row = runs_table["data"][0]
    assert row[1] == "completed" and row[-1] == "yes" and row[6] is not None


def test_a_comparison_saved_by_an_older_version_still_shows(studio):
    url, _, runs = studio
    run_dir, _ = make_finished_run(runs, make_tiny_tokenizer())
    write_old_comparison(run_dir)
    scores, _scores_fig, _delta_fig, table, raw, reports = client(url).predict(run_dir.name,
                                                                                api_name="/saved_comparison")
    assert '0.3</span> → 43.7' in scores and "(no confidence interval)" in scores and "not recorded" in scores
    assert "saved without raw continuations" in raw and len(table["data"]) == 2
    assert {r.rsplit(".", 1)[-1] for r in reports} == {"html", "md"}


def test_two_clients_keep_their_own_data(studio):
    url, *_ = studio
    a, b = client(url), client(url)
    results: dict[str, str] = {}

    def load(name: str, c: Client, sample: str) -> None:
        c.predict(sample=sample, api_name="/load_data")
        results[name] = c.predict(index=1, api_name="/preview")[0]

    threads = [threading.Thread(target=load, args=("a", a, "word_tasks")),
               threading.Thread(target=load, args=("b", b, "product_docs"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["a"] != results["b"]
    # Each client still sees its own data afterwards.
    assert a.predict(index=1, api_name="/preview")[0] == results["a"]
    assert b.predict(index=1, api_name="/preview")[0] == results["b"]


def test_errors_reach_the_client_as_one_sentence(studio, tmp_path):
    c = client(studio[0])
    with pytest.raises(AppError, match="^Load a dataset on the Data tab before starting training.$"):
        c.predict(api_name="/train")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(AppError, match=r"^File 'notes.txt' has the extension '.txt', which is not a supported format"):
        c.predict(source="Upload a file", upload=handle_file(str(bad)), api_name="/load_data")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"instruction": "a", "output": ')
    with pytest.raises(AppError) as err:
        c.predict(source="Upload a file", upload=handle_file(str(broken)), api_name="/load_data")
    assert "broken.json" in err.value.message and "Traceback" not in err.value.message
    c.predict(api_name="/load_data")
    with pytest.raises(AppError, match="must leave some rows for training"):
        c.predict(data_test_fraction=0.6, data_validation_fraction=0.5, api_name="/split")


def test_a_visitor_cannot_delete_another_visitors_run(studio):
    url, *_ = studio
    owner = client(url)
    owner.predict(api_name="/load_data")
    owner.predict(**QUICK_TRAIN, api_name="/train")
    run_id = wait_for_job(owner)["run_id"]
    with pytest.raises(AppError, match="belongs to another session"):
        client(url).predict(run_id=run_id, api_name="/delete_run")
    owner.predict(run_id=run_id, api_name="/delete_run")
    assert run_id not in [r[0] for r in owner.predict(api_name="/list_runs")[0]["data"]]


def test_export_and_push_from_the_runs_tab(studio):
    url, *_ = studio
    owner = client(url)
    owner.predict(api_name="/load_data")
    owner.predict(**QUICK_TRAIN, api_name="/train")
    run_id = wait_for_job(owner)["run_id"]
    path, status = owner.predict(run_id=run_id, api_name="/export_adapter")
    assert path.endswith("-adapter.zip") and "Adapter zip ready" in status
    card, status = owner.predict(run_id=run_id, api_name="/export_merged")
    assert card.endswith("README.md") and "Merged model saved" in status
    assert "of disk is free on the server" in owner.predict(run_id=run_id, api_name="/export_sizes")
    path, status = owner.predict(run_id=run_id, api_name="/export_merged_zip")
    assert path.endswith("-merged.zip") and "Merged model zip ready" in status
    files, status = owner.predict(run_id=run_id, quant="f16", api_name="/export_gguf")
    assert {Path(f).name for f in files} >= {f"{run_id}-f16.gguf", "Modelfile", "README.md"}
    assert "GGUF written" in status and "ollama create" in status
    table, status = owner.predict(run_id=run_id, quant="f16", api_name="/verify_export")
    assert re.match(r"f16 GGUF: (\d+)/\1 answers equal the studio's tuned answers", status), status
    assert table["headers"] == ["Instruction", "Studio answer", "GGUF answer", "Equal"] and len(table["data"]) == 4
    with pytest.raises(AppError, match="belongs to another session"):
        client(url).predict(run_id=run_id, quant="f16", api_name="/verify_export")
    with pytest.raises(AppError, match="needs a Hugging Face token"):
        owner.predict(run_id=run_id, repo="me/adapter", token="", api_name="/push_to_hub")
    with pytest.raises(AppError, match="cannot be reached"):
        owner.predict(run_id=run_id, repo="me/adapter", token="hf_fake", api_name="/push_to_hub")
    with pytest.raises(AppError, match="belongs to another session"):
        client(url).predict(run_id=run_id, api_name="/export_adapter")


def test_unknown_columns_can_be_mapped_by_hand(studio, tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("question_text,reply\n" + "".join(f"say {w},{w}\n" for w in "abcdefghij"))
    c = client(studio[0])
    shape, instruction, _input, _output, counts, *_ = c.predict(
        source="Upload a file", upload=handle_file(str(data)), api_name="/load_data")
    assert shape.startswith("⚠ No known dataset shape fits the columns")
    assert [v for _, v in instruction["choices"]] == ["", "question_text", "reply"] and counts == ""
    shape, counts, table, _, _problems = c.predict(instruction="question_text", output="reply", input="",
                                                   api_name="/remap")
    assert "mapped by hand" in shape and re.search(r"\d+ train", counts)
    assert table["data"][0][0].startswith("say ")


MESSY = Path(__file__).parent.parent / "data" / "messy"


def test_a_messy_file_loads_with_its_summary_and_rows_per_reason(studio):
    c = client(studio[0])
    shape, *_ = c.predict(source="Upload a file", upload=handle_file(str(MESSY / "sharegpt_irregular.json")),
                          api_name="/load_data")
    assert shape.startswith("⚠ File 'sharegpt_irregular.json' is cut off in the middle of a record")
    shape, *_, counts, _table, template, _index, problems = c.predict(
        source="Upload a file", upload=handle_file(str(MESSY / "sharegpt_irregular.json")),
        data_keep_truncated=True, api_name="/load_data")
    assert "**Kept 9 of 12 rows: 1 repaired (leading assistant turn)" in shape and "3 repaired (role alias)" in shape
    assert template["value"] == "chat" and re.search(r"\d+ train", counts)
    assert "leading assistant turn: 1 repaired" in problems and "<b>Row 2</b> starts with 1 turn" in problems
    assert "unknown role: 1 skipped" in problems and "wizard" in problems
    html, _ = c.predict(index=1, data_template="chat", api_name="/preview")
    assert html.count("tok-trained") > 2
    _figure, note, _suggestion, _size = c.predict(data_template="alpaca", api_name="/lengths")
    assert "only the last answer is trained" in note
    with pytest.raises(AppError, match=r"^Row 2 starts with 1 turn .*strict mode refuses"):
        c.predict(source="Upload a file", upload=handle_file(str(MESSY / "sharegpt_irregular.json")),
                  data_keep_truncated=True, data_strict=True, api_name="/load_data")


def test_a_truncated_file_offers_its_complete_records(studio):
    c = client(studio[0])
    upload = handle_file(str(MESSY / "truncated_array.json"))
    shape, *_, counts, _table, _template, _index, _problems = c.predict(source="Upload a file", upload=upload,
                                                                        api_name="/load_data")
    assert shape.endswith("after 3 complete records; keep those records or fix the file.") and counts == ""
    with pytest.raises(AppError, match="^Load a dataset on the Data tab before starting training.$"):
        c.predict(api_name="/train")  # not a run that fails on the refused file
    shape, *_, counts, _table, _template, _index, _problems = c.predict(
        source="Upload a file", upload=upload, data_keep_truncated=True, api_name="/load_data")
    assert "the file is cut off after its 3 complete records" in shape and "3 usable rows" in counts


def test_the_data_tab_suggests_a_subset_that_fits_the_time_budget(studio):
    url = studio[0]
    runs_root = Path(studio[2])
    info = create_run(runs_root, StudioSettings())  # a finished run on this machine that logged its speed
    for step in range(1, 4):
        RunFolder(info.path).append_metric({"step": step, "loss": 1.0, "tokens_per_second": 50.0, "elapsed": step})
    update_run(info.path, status="completed")
    c = client(url)
    c.predict(data_max_test_examples=4, api_name="/load_data")
    _figure, _note, suggestion, size = c.predict(budget=1, api_name="/lengths")
    assert f"At 50 tokens/s (measured in run {info.run_id})" in suggestion and "examples** train in 1 minute (max examples" in (
        suggestion)
    assert isinstance(size, (int, float)) and 5 <= size < 320


def test_hub_offline_is_one_sentence(studio):
    with pytest.raises(AppError, match=r"^The Hugging Face Hub cannot be reached from this machine"):
        client(studio[0]).predict(source="Hub dataset", hub_id="tatsu-lab/alpaca", api_name="/load_data")


def test_presets_save_and_load(studio):
    url, presets, _ = studio
    c = client(url)
    c.predict(name="small-rank", description="Rank 4 for a quick look.", lora_r=4, train_learning_rate=1e-4,
              api_name="/save_preset")
    assert read_preset("small-rank", presets) == {"description": "Rank 4 for a quick look.",
                                                 "lora": {"r": 4}, "train": {"learning_rate": 1e-4}}
    with pytest.raises(AppError, match="already exists"):
        c.predict(name="small-rank", description="again", api_name="/save_preset")
    values = c.predict(name="small-rank", api_name="/load_preset")
    assert 4 in values and 1e-4 in values
