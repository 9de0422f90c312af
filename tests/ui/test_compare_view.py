"""The Compare tab's pure renderers (ui.compare_view): score cards with intervals, the raw answers, the table."""
from __future__ import annotations

from studio.evaluate.comparison import load_comparison
from studio.runs import create_run
from studio.settings import StudioSettings
from tests.builders import sample_comparison, write_old_comparison
from ui.compare_view import comparison_frame, raw_answers_html, score_cards_html


def test_score_cards_show_each_change_with_its_interval_and_verdict():
    html = score_cards_html(sample_comparison())
    assert '<p class="compare-headline good">Tuning improved BLEU by +69.3 points' in html
    assert ('<div class="card big wide good"><div class="label">BLEU</div><div class="value"><span class="before">'
            '2.1</span> → 71.4</div><div class="sub">+69.3 [95% CI +40.5, +95.2]</div>'
            '<span class="badge">significant</span>') in html
    assert '<div class="sub">+65.2 [95% CI -10.0, +90.0]</div><span class="badge">not significant</span>' in html
    assert ">1 · 0 · 1<" in html and "better · same · worse, by sentence BLEU" in html
    assert "Answers cut at the first &quot;\\n### &quot; or at &lt;eos&gt;" in html


def test_raw_answers_say_how_each_answer_ended_and_escape_the_text():
    html = raw_answers_html(sample_comparison())
    assert html.count("<details>") == 2 and html.index("Uppercase &lt;b&gt;") < html.index("Reverse")  # by gain
    assert "base: cut at &quot;\\n### &quot;" in html and "tuned: ended with &lt;eos&gt;" in html
    assert "base: ran to the token limit" in html and "<pre>dog dog\n### Input:\ncat</pre>" in html


def test_a_comparison_saved_by_an_older_version_renders(runs_dir):
    run_dir = create_run(runs_dir, StudioSettings()).path
    write_old_comparison(run_dir)
    old = load_comparison(run_dir)
    html = score_cards_html(old)
    assert "(no confidence interval)" in html and "badge" not in html and "ROUGE-L" not in html
    assert "saved without raw continuations" in raw_answers_html(old)
    assert comparison_frame(old)["Change"].tolist() == [100.0, 0.0]
