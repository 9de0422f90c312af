"""One sentence in the page, never a traceback: StudioError -> its message; anything else -> a generic sentence."""
from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from studio.errors import StudioError

log = logging.getLogger("studio.ui")
GENERIC = "Something unexpected went wrong; the details are in the server log."


def as_gr_error(exc: BaseException) -> gr.Error:
    """The gr.Error a handler raises for `exc` (logging the traceback when it is not a StudioError)."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, StudioError):
        return gr.Error(str(exc), print_exception=False)
    log.exception("Unexpected error in a UI handler")
    return gr.Error(GENERIC, print_exception=False)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a handler so every error reaches the page as one clear sentence (a gr.Error toast)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the UI boundary
                raise as_gr_error(exc) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the UI boundary
            raise as_gr_error(exc) from None
    return wrapper


def warn(exc: BaseException) -> None:
    """Show a non-fatal problem as a yellow toast (same one-sentence rule)."""
    gr.Warning(str(exc) if isinstance(exc, StudioError) else GENERIC)
    if not isinstance(exc, StudioError):
        log.exception("Unexpected error in a UI handler", exc_info=exc)
