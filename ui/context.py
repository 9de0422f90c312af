"""What the tab builders share: services, the per-visitor state, the settings form and each tab's components."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from ui.services import Services
from ui.widgets import SettingsForm


@dataclass
class Context:
    """Built once per app; tabs register their components here so later tabs can wire to earlier ones."""

    services: Services
    state: gr.State
    form: SettingsForm
    browser_id: Any = None  # gr.BrowserState holding the visitor's stable id
    tabs: Any = None  # gr.Tabs, to switch tab from a handler
    tab_blocks: dict[str, Any] = field(default_factory=dict)  # gr.Tab by id, to refresh a tab when it is opened
    token: Any = None  # the HF token textbox (Model tab); its value is passed, never stored
    oauth: bool = False  # "Sign in with Hugging Face" is offered (a Space with hf_oauth enabled)
    data: Any = None
    model: Any = None
    train: Any = None
    compare: Any = None
    runs: Any = None
