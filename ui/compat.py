"""Gradio's private API, behind one function that fails loudly (the library's touches live in `studio/compat.py`)."""
from __future__ import annotations

from typing import Any

import gradio as gr

from studio.compat import changed

QUEUE_KNOBS = ("sleep_when_free", "progress_update_sleep_when_free")


def gradio_queue(blocks: gr.Blocks) -> Any:
    """The Blocks' event queue (gradio's private `Blocks._queue`), with the idle-sleep knobs the studio sets."""
    queue = getattr(blocks, "_queue", None)
    if queue is None:
        raise changed("gradio", "Blocks._queue", "make the queue look for work less often (app.calm_queue)")
    missing = [k for k in QUEUE_KNOBS if not hasattr(queue, k)]
    if missing:
        raise changed("gradio", f"Queue.{', Queue.'.join(missing)}", "make the queue look for work less often "
                      "(app.calm_queue)")
    return queue
