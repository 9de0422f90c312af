"""A polling tick (ui.polling, through the Demo tab's view): only what changed is sent, the chart on a new point."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ui.demo_tab import VIEW, demo_view

SKIP = gr.skip()


class FakeDemo(SimpleNamespace):
    """What demo_view reads from a demo job while it trains."""

    def history(self):
        return [dict(r) for r in self.records]

    def progress(self):
        return {"step": len(self.records), "total_steps": 10, "epoch": 0.1, "fraction": len(self.records) / 10,
                "tokens_per_second": 50.0, "eta_seconds": 9.0, "elapsed": 3.0}


def _demo(tmp_path, points: int = 2) -> FakeDemo:
    return FakeDemo(run_id="20260101-000000-abcdef", status="training", stage="train", message="", error="",
                    comparison=None, run_dir=str(tmp_path),
                    records=[{"step": s, "loss": 2.0 / s, "learning_rate": 1e-3} for s in range(1, points + 1)])


def test_a_tick_with_nothing_new_sends_nothing(tmp_path):
    demo = _demo(tmp_path)
    *first, shown = demo_view(demo, {})
    assert SKIP not in first and first[VIEW.index("plot")]["value"] is not None
    *again, shown = demo_view(demo, shown)
    assert again == [SKIP] * len(VIEW)


def test_a_new_point_sends_the_chart_and_the_details_but_not_the_results(tmp_path):
    demo = _demo(tmp_path)
    *_, shown = demo_view(demo, {})
    demo.records.append({"step": 3, "loss": 0.5, "learning_rate": 1e-3})
    view = dict(zip(VIEW, demo_view(demo, shown)))
    assert list(view["plot"]["value"].data[0].x) == [1, 2, 3] and view["details"]["step"] == 3
    assert all(view[name] == SKIP for name in ("steps", "results", "scores", "examples", "report", "ask_box", "timer"))


def test_the_end_is_sent_once_and_the_whole_view_always(tmp_path):
    demo = _demo(tmp_path)
    *_, shown = demo_view(demo, {})
    demo.status, demo.message = "stopped", "Stopped at step 2; the adapter trained so far is saved."
    view = dict(zip(VIEW, demo_view(demo, shown)))
    assert "Stopped at step 2" in view["status"] and view["timer"] != SKIP and view["plot"] == SKIP
    assert view["results"] != SKIP  # the ending re-decides what the results area shows
    assert demo_view(demo, view_keys := demo_view(demo, shown)[-1])[:-1] == (SKIP,) * len(VIEW)
    assert view_keys["timer"] is False and SKIP not in demo_view(demo)[:-1]  # /demo_progress sends everything
