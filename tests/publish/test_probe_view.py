"""The probe as people see it: table rows, HTML, chart, and its sections in the report and the model card."""
from __future__ import annotations

from studio.evaluate.probe_record import save_probe, summarize
from studio.publish.modelcard import model_card
from studio.publish.probe_view import HEADER, probe_figure, probe_html, probe_markdown, probe_rows, probe_text
from studio.publish.report import write_report
from tests.builders import make_finished_run


def result(task: str = "probe_arithmetic"):
    base = {task: {"acc": [1.0] * 10 + [0.0] * 2}, "probe_reading": {"acc": [1.0, 0.0, 1.0, 1.0]}}
    tuned = {task: {"acc": [1.0] * 4 + [0.0] * 8}, "probe_reading": {"acc": [1.0, 0.0, 1.0, 1.0]}}
    return summarize([task, "probe_reading"], base, tuned, 2.0, 3.0)


def test_rows_per_category_and_overall():
    rows = probe_rows(result())
    assert [r[0] for r in rows] == ["arithmetic", "reading", "overall"]
    assert rows[0][:5] == ["arithmetic", "12", "83.3%", "33.3%", "-50.0 pts"]
    assert rows[0][5].startswith("-") and " to " in rows[0][5]
    assert rows[2][1] == "16"


def test_html_says_the_verdict_and_escapes_task_names():
    html = probe_html(result("<script>alert(1)</script>"))
    assert "Lost 50 points on" in html and "&lt;script&gt;" in html and "<script>" not in html
    assert all(h in html for h in HEADER) and "paired bootstrap" in html
    assert "<h2>" not in probe_html(result(), heading=False)


def test_markdown_goes_through_the_callers_table():
    lines = probe_markdown(result(), lambda header, rows: [f"{len(header)} columns, {len(rows)} rows"])
    assert lines[0] == "## Did it forget anything?" and "6 columns, 3 rows" in lines


def test_text_lines_are_aligned():
    lines = probe_text(result())
    table = lines[1:5]
    assert len({len(line) for line in table}) == 1 and lines[-1].startswith("Lost 50 points on arithmetic.")


def test_chart_has_one_point_per_category_with_its_interval():
    fig = probe_figure(result())
    trace = fig.data[0]
    assert list(trace.y) == ["overall", "reading", "arithmetic"] and trace.x[-1] == -50.0
    assert trace.error_x.array[-1] >= 0 and trace.error_x.arrayminus[-1] >= 0


def test_report_and_model_card_include_the_probe_once_it_ran(runs_dir, tiny_tokenizer):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer)
    html, md = write_report(run_dir)
    assert "Did it forget anything?" not in html.read_text() + md.read_text() + model_card(run_dir)
    save_probe(run_dir, result())
    html, md = write_report(run_dir)
    assert "Did it forget anything?" in html.read_text() and "Lost 50 points on arithmetic." in md.read_text()
    card = model_card(run_dir)
    assert "## Did it forget anything?" in card and "| arithmetic | 12 | 83.3% | 33.3% |" in card
