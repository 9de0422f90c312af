"""Same settings + same thread count on the same machine -> bit-identical adapter and identical answers.

The seed is set before LoRA wraps the model, so the adapter's initial weights, the batch order and the dropout masks
all follow train.seed; the thread count is pinned for training and Compare. Checked within one process, across two
processes (tests/repro_worker.py), and for a short run of the real embedded model.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio import runs
from tests.repro_worker import RESULT, repro_settings, train_and_compare
from tests.tiny import WORDS, write_uppercase_rows

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "tests" / "repro_worker.py"


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    return write_uppercase_rows(tmp_path_factory.mktemp("data") / "words.jsonl", WORDS)


@pytest.fixture(scope="module")
def default_result(tmp_path_factory, data_file) -> dict:
    """train_and_compare with the default repro settings, once for the module: each check below runs its other half."""
    return train_and_compare(tmp_path_factory.mktemp("runs"), repro_settings(data_file))


def in_subprocess(root: Path, *args: str, timeout: float = 300) -> dict:
    """train_and_compare in a fresh Python process (its own torch state, its own random generator)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("OMP_NUM_THREADS", None)  # the run's own default thread count, as in this process
    proc = subprocess.run([sys.executable, str(WORKER), str(root), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len(RESULT):])


def test_same_settings_give_the_same_adapter_and_answers_in_one_process(tmp_path, data_file, default_result):
    first = default_result
    second = train_and_compare(tmp_path / "b", repro_settings(data_file))
    assert first == second
    assert first["policy"] == "pinned" and first["threads"] >= 1


def test_another_seed_gives_another_adapter(tmp_path, data_file, default_result):
    # The check above can fail: a different train.seed changes the LoRA initialisation and the batch order.
    first = default_result
    other = train_and_compare(tmp_path / "b", repro_settings(data_file, seed=7))
    assert first["adapter"] != other["adapter"]


def test_same_settings_give_the_same_adapter_in_another_process(tmp_path, data_file, default_result):
    here = default_result
    there = in_subprocess(tmp_path / "b", str(data_file))
    assert here == there


def test_the_thread_count_is_recorded_and_a_setting(tmp_path, data_file):
    result = train_and_compare(tmp_path / "a", repro_settings(data_file, threads=1))
    assert (result["threads"], result["policy"]) == (1, "pinned")
    [info] = runs.list_runs(tmp_path / "a")
    assert (info.threads, info.thread_policy) == (1, "pinned")
    versions = json.loads((info.folder.reproduce_dir / "versions.json").read_text())
    assert versions["threads"] == {"count": 1, "policy": "pinned"}
    assert "1 CPU thread (pinned)" in info.folder.report_md.read_text()


@pytest.mark.slow
def test_a_short_run_of_the_embedded_model_repeats_in_another_process(tmp_path):
    here = train_and_compare(tmp_path / "a", repro_settings(None, embedded=True), embedded=True)
    there = in_subprocess(tmp_path / "b", "--embedded", timeout=600)
    assert here["comparison_rows"] == there["comparison_rows"] and here["answers"] == there["answers"]
    assert here == there
