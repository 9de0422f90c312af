"""A job's lock-guarded history, log and progress: records move progress on, the ETA counts this session only."""
from __future__ import annotations

import threading

from studio.train.progress import TrainingProgress


def test_loss_and_eval_records_move_progress_and_say_a_line():
    track = TrainingProgress()
    track.update(total_steps=4)
    track.add({"step": 1, "epoch": 0.25, "loss": 2.5, "tokens_per_second": 100.0, "elapsed": 2.0})
    track.add({"step": 1, "eval_loss": 2.25})
    view = track.view()
    assert (view["step"], view["epoch"], view["tokens_per_second"], view["fraction"]) == (1, 0.25, 100.0, 0.25)
    assert view["eta_seconds"] == 6.0  # 3 steps left at 2 s a step
    assert track.logs() == ["step 1/4 loss 2.5", "step 1 eval loss 2.25"]
    assert track.last("loss") == 2.5 and track.last("eval_loss") == 2.25 and track.value("elapsed") == 2.0


def test_a_resumed_run_keeps_its_history_and_times_only_its_own_steps():
    track = TrainingProgress([{"step": 1, "loss": 3.0, "elapsed": 50.0}, {"step": 2, "loss": 2.0, "elapsed": 100.0}])
    track.update(total_steps=6, step=2, first_step=2, elapsed=100.0, first_elapsed=100.0)
    assert track.view()["eta_seconds"] is None  # no step of this session yet
    track.add({"step": 3, "loss": 1.5, "elapsed": 104.0})
    view = track.view()
    assert view["eta_seconds"] == 12.0 and "first_step" not in view and "first_elapsed" not in view
    assert [r["step"] for r in track.history()] == [1, 2, 3] and track.last("loss") == 1.5


def test_copies_are_handed_out_and_answering_starts_empty():
    track = TrainingProgress()
    assert track.answering() == {"which": "", "done": 0, "total": 0}
    track.answered("tuned", 3, 16)
    answering = track.answering()
    answering["done"] = 99
    assert track.answering() == {"which": "tuned", "done": 3, "total": 16}
    track.add({"step": 1, "loss": 1.0, "elapsed": 1.0})
    track.history()[0]["loss"] = 9.0
    assert track.last("loss") == 1.0


def test_many_threads_write_without_losing_a_record():
    track = TrainingProgress()
    track.update(total_steps=800)

    def write(offset: int) -> None:
        for i in range(200):
            track.add({"step": offset + i, "loss": 1.0, "elapsed": float(offset + i)})

    threads = [threading.Thread(target=write, args=(k * 200,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(track.history()) == 800 and len(track.logs()) == 800
