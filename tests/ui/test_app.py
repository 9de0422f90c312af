"""The app shell: host/port defaults and overrides, the Space note, a calm queue, every setting wired, the upload
cap."""
from __future__ import annotations

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app
from tests.browser_utils import launch_studio
from ui.compat import gradio_queue
from ui.theme import header_html


def test_binds_localhost_by_default(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    args = app.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 7860)


def test_host_and_port_from_flags_or_environment(monkeypatch):
    assert app.parse_args(["--host", "0.0.0.0", "--port", "8080"]).host == "0.0.0.0"
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "9000")
    args = app.parse_args([])
    assert (args.host, args.port) == ("0.0.0.0", 9000)


def test_space_note_only_on_a_space(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert "vanish" not in header_html()
    monkeypatch.setenv("SPACE_ID", "someone/studio")
    assert "vanish when it restarts" in header_html()


def test_the_queue_looks_for_work_every_20_ms_not_every_millisecond(tmp_path):
    # Gradio's 1 ms default wakes the server a thousand times a second, taking the GIL from the training thread
    queue = gradio_queue(app.build_app(runs_root=tmp_path))
    assert queue.sleep_when_free == app.QUEUE_IDLE_SLEEP_S == 0.02
    assert queue.progress_update_sleep_when_free == app.QUEUE_PROGRESS_SLEEP_S


def test_every_setting_has_a_widget_in_the_app(tmp_path):
    import dataclasses

    from studio.settings import SECTIONS

    demo = app.build_app(runs_root=tmp_path)
    expected = {f"{s}_{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)
                if f.name not in ("dataset", "column_map")}  # these two come from what the visitor loaded
    api = demo.get_api_info()["named_endpoints"]["/train"]["parameters"]
    assert expected <= {p["parameter_name"] for p in api}


@pytest.fixture()
def capped_studio(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "0.001")  # about 1 KB
    demo, url = launch_studio(tmp_path / "runs")
    yield url
    demo.close()


def test_uploads_over_the_cap_get_a_clear_sentence(capped_studio, tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text('{"instruction": "say hi", "output": "hi"}\n' * 200)
    with pytest.raises(AppError, match=r"^File 'big.jsonl' is .* above the .* limit; use a smaller file"):
        Client(capped_studio, verbose=False).predict(source="Upload a file", upload=handle_file(str(big)),
                                                     api_name="/load_data")


def test_numbers_read_well():
    from ui.theme import duration, human_bytes, human_count, progress_html

    assert human_bytes(1.07e9) == "1020 MiB" and "e+" not in human_count(999_999)
    assert human_count(268_098_176) == "268 M" and duration(76) == "1 min 16 s"
    html = progress_html("queued", {"step": 0, "total_steps": 40, "fraction": 0.0}, queue_position=2)
    assert "position 2 in the queue" in html and "step 0 / 40" in html


def test_sign_in_is_offered_only_on_a_space_with_oauth(monkeypatch, tmp_path):
    import gradio as gr

    from tests.browser_utils import tiny_loaders

    for system, client_id, expected in (("spaces", "abc", True), ("spaces", "", False), ("", "abc", False)):
        monkeypatch.setenv("SYSTEM", system)
        monkeypatch.setenv("OAUTH_CLIENT_ID", client_id)
        assert app.oauth_enabled() is expected
    model_loader, tokenizer_loader = tiny_loaders()

    def build(oauth: bool):
        return app.build_app(model_loader=model_loader, tokenizer_loader=tokenizer_loader, runs_root=tmp_path,
                             oauth=oauth)

    assert not build(False).expects_oauth
    # Off a Space, Gradio mocks the sign-in with this machine's own Hub login (it asks the Hub at build time).
    from tests.test_secrets import mocked_sign_in

    monkeypatch.setattr(gr.oauth, "_get_mocked_oauth_info", mocked_sign_in)
    assert sum(isinstance(b, gr.LoginButton) for b in build(True).blocks.values()) == 1
