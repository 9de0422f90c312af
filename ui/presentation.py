"""The page header with the presentation-mode toggle: large type and settings out of sight, for a projector.

The toggle only switches a CSS class on the page (`body.presenting`, styled in `ui/demo_view.CSS`), so nothing
reloads; the choice is remembered in the browser, and `?present` in the address turns it on.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from ui.theme import header_html

TOGGLE_JS = """(on) => {
  document.body.classList.toggle('presenting', !!on);
  try { localStorage.setItem('studio-presenting', on ? '1' : ''); } catch (e) {}
  return on;
}"""
RESTORE_JS = """() => {
  let on = new URLSearchParams(window.location.search).has('present');
  try { on = on || localStorage.getItem('studio-presenting') === '1'; } catch (e) {}
  document.body.classList.toggle('presenting', on);
  return on;
}"""


def create_header() -> Any:
    """The title and tagline with the presentation-mode toggle beside them; returns the toggle."""
    with gr.Row(elem_classes="studio-top", equal_height=True):
        with gr.Column(scale=5, min_width=260):
            gr.HTML(header_html())
        toggle = gr.Checkbox(False, label="Presentation mode", elem_id="presentation-toggle", scale=1,
                             min_width=200, info="Large type, settings hidden: for a projector.")
    return toggle


def wire_presentation(blocks: gr.Blocks, toggle: Any) -> None:
    """Switch the page's class from the toggle (in the browser only) and restore the choice on load."""
    toggle.change(None, toggle, None, js=TOGGLE_JS, api_visibility="private")
    blocks.load(None, None, toggle, js=RESTORE_JS, api_visibility="private")
