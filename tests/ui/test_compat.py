"""Gradio's private queue and its idle-sleep knobs still exist in the installed version (ui.compat)."""
from __future__ import annotations

import types

import gradio as gr
import pytest

from studio.compat import InternalsChanged
from ui.compat import QUEUE_KNOBS, gradio_queue


def test_the_blocks_queue_still_has_the_knobs_the_studio_sets():
    queue = gradio_queue(gr.Blocks())
    assert all(isinstance(getattr(queue, knob), (int, float)) for knob in QUEUE_KNOBS)


def test_a_renamed_queue_or_knob_names_gradio_and_its_version():
    with pytest.raises(InternalsChanged, match=rf"gradio {gr.__version__} no longer has Blocks._queue"):
        gradio_queue(types.SimpleNamespace())
    with pytest.raises(InternalsChanged, match="Queue.progress_update_sleep_when_free"):
        gradio_queue(types.SimpleNamespace(_queue=types.SimpleNamespace(sleep_when_free=0.001)))
