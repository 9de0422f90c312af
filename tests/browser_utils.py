"""Shared by the API and browser tests: the studio launched in-process with the tiny model, and Chromium."""
from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from studio.model.loading import LoadedModel
from tests.tiny import make_tiny_model, make_tiny_tokenizer

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_loaders(step_delay: float = 0.0) -> tuple[Any, Any]:
    """(model_loader, tokenizer_loader) returning the tiny test model; `step_delay` slows each training forward
    pass so a browser can watch the loss chart grow (the tiny model otherwise finishes before the first tick)."""
    tokenizer = make_tiny_tokenizer()

    def slow_down(module: Any, args: Any) -> None:
        if module.training:
            time.sleep(step_delay)

    def model_loader(settings, token=None) -> LoadedModel:
        model = make_tiny_model(tokenizer)
        if step_delay:  # on the embedding, which every forward path (including the fast loss) goes through
            model.get_input_embeddings().register_forward_pre_hook(slow_down)
        return LoadedModel(model, tokenizer, settings.model, "local", 0.01, False)

    return model_loader, (lambda settings, token=None: tokenizer)


def launch_studio(runs: Path, step_delay: float = 0.0, preset_dir: Path | None = None,
                  oauth: bool | None = None) -> tuple[Any, str]:
    """Build and launch the studio on a free port with the tiny model; returns (demo, url)."""
    from app import build_app, launch_kwargs

    model_loader, tokenizer_loader = tiny_loaders(step_delay)
    demo = build_app(model_loader=model_loader, tokenizer_loader=tokenizer_loader, runs_root=runs,
                     preset_dir=preset_dir, oauth=oauth)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **launch_kwargs())
    return demo, url


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium through Playwright (its own browser download does not work here)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        import pytest

        pytest.skip("chromium is not installed")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
