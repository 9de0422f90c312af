"""The Demo tab's pure renderers (ui.demo_view): step bar, status line, the three examples in large type."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from tests.builders import sample_comparison
from ui.demo_view import CLIP, examples_html, status_html, steps_html


def fake_demo(status: str, stage: str, comparison=None, message: str = "", **progress) -> SimpleNamespace:
    return SimpleNamespace(status=status, stage=stage, comparison=comparison, message=message, error="",
                           progress=lambda: progress)


def test_the_step_bar_ticks_what_is_done_and_marks_where_a_demo_ended():
    assert steps_html().count('<li class="todo">') == 5
    running = steps_html("train", "training")
    assert running.count('<li class="done">') == 2 and '<li class="current"><span class="num">3</span>Train' in running
    assert steps_html("results", "completed").count('<li class="done">') == 5
    stopped = steps_html("compare", "stopped")
    assert '<li class="stopped"><span class="num">■</span>Compare' in stopped and stopped.count("done") == 3


def test_the_status_line_says_what_happens_now():
    assert "Nothing has run yet." in status_html(None) and "▶ Run the before/after demo" in status_html(None)
    assert "position 2 in the queue" in status_html(fake_demo("queued", "data"), queue_position=2)
    comparing = status_html(fake_demo("evaluating", "compare", answering={"which": "tuned", "done": 6, "total": 24}))
    assert "The tuned model (adapter on) answers the held-out prompts: 6 / 24" in comparing
    assert 'style="width:62.5%"' in comparing  # base half done + a quarter of the tuned half
    training = status_html(fake_demo("training", "train", step=3, total_steps=80, fraction=0.04))
    assert "step 3 / 80" in training
    done = status_html(fake_demo("completed", "results", sample_comparison(), step=80, demo_seconds=95.0))
    assert "Done in 1 min 35 s.</strong> Trained 80 steps, then the base and the tuned model answered 2" in done
    stopped = status_html(fake_demo("stopped", "train", message="Stopped at step 3 of 80; ..."))
    assert '<div class="demo-ended stopped">Stopped at step 3' in stopped


def test_three_examples_in_large_type_best_first_escaped_and_clipped():
    cmp = sample_comparison()
    long = replace(cmp.rows[1], base="word " * 100)
    cmp = replace(cmp, rows=[cmp.rows[0], long, replace(cmp.rows[0], instruction="Third")])
    html = examples_html(cmp)
    assert html.startswith('<h3 class="demo-heading">Where tuning helped most</h3>')
    assert html.count('class="demo-example"') == 3 and html.index("Uppercase &lt;b&gt;") < html.index("Reverse")
    assert '<div class="demo-answer after good"><span class="tag">After tuning</span><p>DOG</p>' in html
    clipped = "word " * 100
    assert clipped.strip()[:CLIP - 1] + "…" in html and "Expected: god" in html
    no_gain = replace(cmp, rows=[replace(r, tuned_bleu=r.base_bleu) for r in cmp.rows])
    assert "tuning did not raise any example" in examples_html(no_gain)


def test_a_third_card_shows_what_prompting_alone_answered():
    from studio.evaluate.baseline_record import score_baseline, skipped
    from studio.evaluate.generation import Answer

    cmp = sample_comparison()
    cmp.baseline = score_baseline(cmp.rows, [Answer("dog <i>", "", 2, "eos"), Answer("og", "", 1, "eos")], 3, "r")
    html = examples_html(cmp)
    assert html.count('class="demo-answer baseline"') == 2
    assert '<span class="tag">Prompting alone (3-shot)</span><p>dog &lt;i&gt;</p>' in html
    assert html.index("Before tuning") < html.index("Prompting alone (3-shot)") < html.index("After tuning")
    assert '<p class="demo-baseline">Prompting alone (3-shot): BLEU ' in html
    cmp.baseline = skipped("Prompting alone was not measured: not even one training example fits.")
    html = examples_html(cmp)
    assert "demo-answer baseline" not in html and "Prompting alone was not measured: not even one" in html
