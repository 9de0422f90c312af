"""What a polling tick sends: only the outputs whose cheap key changed since the page last showed them.

The Train and Demo tabs tick every second in the process that trains. Each builds a key per output (a string, a tuple
or a small dict), compares it with the keys the page holds in a per-session `gr.State`, builds only the outputs whose
key changed and sends `gr.skip()` for the rest; the new keys go back into that state.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr


def changed_view(names: tuple[str, ...], keys: dict[str, Any], shown: dict | None,
                 build: Callable[[list[str]], dict[str, Any]]) -> tuple:
    """(each output in `names`, built or `gr.skip()`, then the new keys); without `shown`, every output is built."""
    shown = shown or {}
    built = build([name for name in names if name not in shown or shown[name] != keys[name]])
    return (*(built.get(name, gr.skip()) for name in names), keys)
