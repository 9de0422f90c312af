"""The Train tab's view: a tick sends only what changed, the chart only when a point arrived."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ui.train_tab import VIEW, job_view

SKIP = gr.skip()


class FakeJob(SimpleNamespace):
    """What job_view reads from a TrainingJob."""

    def history(self):
        return [dict(r) for r in self.records]

    def logs(self):
        return list(self.lines)

    def progress(self):
        return {"step": len(self.records), "total_steps": 10, "epoch": 0.1, "fraction": len(self.records) / 10,
                "tokens_per_second": 50.0, "eta_seconds": 9.0, "elapsed": float(len(self.records))}


def _job(points: int = 2, status: str = "training") -> FakeJob:
    return FakeJob(run_id="20260101-000000-abcdef", status=status, message="", error="", run_dir=None,
                   records=[{"step": s, "loss": 2.0 / s, "learning_rate": 1e-3} for s in range(1, points + 1)],
                   lines=[f"step {s}/10" for s in range(1, points + 1)])


def test_a_tick_with_nothing_new_sends_nothing():
    job = _job()
    *first, shown = job_view(job, 0.0, False, {})
    assert all(value != SKIP for value in first) and first[1] is not None
    *again, shown = job_view(job, 0.0, False, shown)
    assert again == [SKIP] * len(VIEW)


def test_a_new_point_redraws_the_chart_and_a_smoothing_change_too():
    job = _job()
    *_, shown = job_view(job, 0.0, False, {})
    job.records.append({"step": 3, "loss": 0.5})
    job.lines.append("step 3/10")
    progress, plot, log, result, download, status, timer, shown = job_view(job, 0.0, False, shown)
    assert list(plot.data[0].x) == [1, 2, 3] and "step 3/10" in log and status["step"] == 3
    assert (result, download, timer) == (SKIP, SKIP, SKIP)  # still training: nothing new there
    _, plot, *_ = job_view(job, 0.5, False, shown)
    assert len(plot.data) == 3  # raw, smoothed, learning rate


def test_the_end_is_sent_once_and_the_full_view_always():
    job = _job()
    *_, shown = job_view(job, 0.0, False, {})
    job.status, job.message = "completed", "Trained 2 steps."
    progress, plot, log, result, download, status, timer, shown = job_view(job, 0.0, False, shown)
    assert "Completed" in result and plot == SKIP and status["status"] == "completed"
    assert job_view(job, 0.0, False, shown)[:7] == (SKIP,) * 7
    full = job_view(job, 0.0, False)
    assert SKIP not in full[:7] and full[1] is not None  # /progress and a page load send everything


def test_the_chart_is_smoothed_by_default_as_tensorboard_draws_it():
    from studio.publish.plots import SMOOTHING
    from ui import train_tab

    with gr.Blocks():
        tab = train_tab.create_train_tab(None)
    assert tab.smoothing.value == SMOOTHING > 0
