"""Cache build progress: phases, the honest estimate of the total, and the status file (studio.model.cache_progress)."""
from __future__ import annotations

from studio.model.cache_progress import (
    EXPECTED_SECONDS,
    PHASES,
    progress_from_status,
    progress_of,
    read_status,
    write_status,
)


def test_progress_counts_elapsed_time_against_the_expected_total():
    p = progress_of("model", started=100.0, phase_started=110.0, now=112.0)
    later = sum(ph.expected_seconds for ph in PHASES[3:])
    assert p.building and p.phase == "model" and p.elapsed == 12.0
    assert p.expected == 12.0 + (PHASES[2].expected_seconds - 2.0) + later
    assert 0 < p.fraction < 1 and p.label == PHASES[2].label
    assert p.text() == (f"Preparing the embedded model (first start only): 12 s of about {p.expected:.0f} s, "
                        f"{PHASES[2].label}.")


def test_a_slow_phase_raises_the_estimate_instead_of_overrunning_it():
    p = progress_of("tokenizer", started=0.0, phase_started=1.0, now=60.0)
    assert p.expected > p.elapsed == 60.0 and p.fraction < 0.99


def test_the_status_file_round_trips_and_a_missing_one_reads_as_just_started(tmp_path):
    path = tmp_path / "status.json"
    assert read_status(path) is None
    write_status(path, "save", 123.0)
    status = read_status(path)
    assert status["phase"] == "save" and status["started"] == 123.0
    assert progress_from_status(status).phase == "save"
    fresh = progress_from_status(None)
    assert fresh.building and fresh.phase == PHASES[0].key and fresh.expected == EXPECTED_SECONDS
    path.write_text("{not json")
    assert read_status(path) is None
