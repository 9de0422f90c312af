"""The "Watch it learn" renderers: one point's answers beside the base model's, and the note on choosing."""
from __future__ import annotations

from tests.builders import sample_timeline
from ui.timeline_view import point_html, timeline_note


def test_a_point_shows_its_answers_beside_the_base_models_with_its_scores():
    t = sample_timeline()
    t.examples[0]["reference"], t.points[2].answers[0] = "a40", "a40"  # exactly the reference: ticked
    html = point_html(t, 2)
    assert "Answers of step 40 of 80: held-out BLEU 50.0, exact match 0%; validation BLEU 60.0; eval loss 1.1" in html
    assert "<th>Base model</th><th>At step 40</th>" in html and "<td>a0</td>" in html
    assert html.count('class="tl-exact"') == 1 and "in use" not in html
    assert "the base model (step 0, adapter disabled)" in point_html(t, 0)
    assert "step 80 of 80 (the last step)" in point_html(t, 99)  # clamped to the last point
    t.chosen_step = 40
    assert "in use as the run's adapter" in point_html(t, 2)


def test_user_text_is_escaped():
    t = sample_timeline()
    t.examples[0]["instruction"] = "<script>x</script>"
    t.points[1].answers[0] = "<b>bold</b>"
    html = point_html(t, 1)
    assert "<script>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_the_note_says_what_is_in_use_and_what_can_be_chosen():
    t = sample_timeline()
    t.partial, t.planned, t.chosen_step = True, 7, 60
    note = timeline_note(t)
    assert note.startswith("Stopped after 5 of 7 points; the rest were not scored.")
    assert "The run uses its **step-60 snapshot** as its adapter" in note
    assert note.endswith("Best snapshot by validation BLEU: step 60 (60.0); by eval loss: step 60 (0.9).")
    assert "no validation split" in timeline_note(sample_timeline(validation=False))
