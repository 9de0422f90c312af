"""Stop buttons for work that runs inside a request: each sets the visitor's own flag, which the work checks."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState, owner_of


def wire_stop(ctx: Context, button: Any, kind: str, what: str, api_name: str) -> None:
    """Clicking `button` stops the visitor's running `kind` of work (outside every queue, so it is never stuck
    behind the work it stops)."""
    button.click(stop_handler(ctx, kind, what), ctx.state, None, api_name=api_name, concurrency_limit=None,
                 show_progress="hidden")


def stop_handler(ctx: Context, kind: str, what: str) -> Callable[..., None]:
    """The handler behind a stop button: raise the flag and say what happens next."""
    @guarded
    def stop(state: SessionState, request: gr.Request) -> None:
        ctx.services.stops.stop(owner_of(state, request), kind)
        gr.Info(f"Stopping {what}; what is finished is kept.")

    stop.__name__ = f"stop_{kind}"
    stop.__doc__ = f"Stop the visitor's running {what}; what is finished is kept."
    return stop
