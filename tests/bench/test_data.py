"""`python -m bench data` on tiny files: the generated files are messy as promised and a child load reports back."""
from __future__ import annotations

import json

from bench import data as bench_data
from bench import main as bench
from studio.data.dataset import load_source


def test_generated_files_load_with_the_irregularities_they_promise(tmp_path):
    chats, rows = tmp_path / "chats.json", tmp_path / "rows.jsonl"
    n_chats = bench_data.write_chat_array(chats, megabytes=0.2)
    assert bench_data.write_rows_jsonl(rows, 50) == 50
    summary = load_source(str(chats)).summary
    assert summary.n_rows == n_chats and summary.skipped["no_turns"] >= 1
    assert {"leading_assistant", "trailing_user"} <= set(summary.repaired)
    assert load_source(str(rows)).summary.n_kept == 50


def test_bench_data_runs_end_to_end_through_the_bench_entry_point(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_data, "real_sharegpt", lambda: None)
    code = bench.main(["data", "--mb", "0.1", "--rows", "200", "--repeats", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert code == 0 and [r["file"] for r in figures["results"]] == ["chats.json", "rows.jsonl"]
    rows = figures["results"][1]
    assert rows["kept"] == 200 and rows["verdicts"] == {"seconds": True, "rss": True}
    assert rows["studio"]["rss_mb"] > 0 and rows["time_ratio"] > 0
    assert any(line.startswith("rows.jsonl") and line.endswith("PASS") for line in lines)


def test_a_child_reports_its_own_peak_not_its_big_parents(tmp_path):
    rows = tmp_path / "rows.jsonl"
    bench_data.write_rows_jsonl(rows, 20)
    ballast = bytearray(600 * 2**20)  # the parent's peak rises by 600 MB; the child's must not
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    result = bench_data.measure_in_child("baseline", rows)
    del ballast
    assert 0 < result["rss_mb"] < 300
