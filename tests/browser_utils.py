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
from tests.needs import need, unavailable
from tests.tiny import make_tiny_model, make_tiny_tokenizer

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_loaders(step_delay: float = 0.0, generate_delay: float = 0.0) -> tuple[Any, Any]:
    """(model_loader, tokenizer_loader) returning the tiny test model; `step_delay` slows each training forward
    pass so a browser can watch the loss chart grow (the tiny model otherwise finishes before the first tick), and
    `generate_delay` each forward pass outside training (one per generated token), so a stream can be watched and
    stopped mid-answer."""
    tokenizer = make_tiny_tokenizer()

    def slow_down(module: Any, args: Any) -> None:
        time.sleep(step_delay if module.training else generate_delay)

    def model_loader(settings, token=None) -> LoadedModel:
        model = make_tiny_model(tokenizer)
        if step_delay or generate_delay:  # on the embedding, which every forward path (the fast loss too) uses
            model.get_input_embeddings().register_forward_pre_hook(slow_down)
        return LoadedModel(model, tokenizer, settings.model, "local", 0.01, False)

    return model_loader, (lambda settings, token=None: tokenizer)


def launch_studio(runs: Path, step_delay: float = 0.0, preset_dir: Path | None = None,
                  oauth: bool | None = None, warmup: Any = None, generate_delay: float = 0.0) -> tuple[Any, str]:
    """Build and launch the studio on a free port with the tiny model; returns (demo, url).

    `warmup` (a studio.model.warmup.Warmup with a fake build) shows the cold-start progress on the page;
    `generate_delay` slows each generation step so a test can stop an answer mid-stream.
    """
    from app import build_app, launch_kwargs

    model_loader, tokenizer_loader = tiny_loaders(step_delay, generate_delay)
    demo = build_app(model_loader=model_loader, tokenizer_loader=tokenizer_loader, runs_root=runs,
                     preset_dir=preset_dir, oauth=oauth, warmup=warmup)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **launch_kwargs())
    return demo, url


def slow_fake_build(seconds: float, gate: Any = None) -> tuple[Any, Any]:
    """(ensure, ready) of a pretend embedded-model build that walks through every phase in `seconds`; with a
    `gate` (a threading.Event) each phase also waits for the test to set it, so a loaded machine misses none."""
    import threading

    from studio.model.cache_progress import PHASES

    done = threading.Event()

    def ensure(on_phase: Any = None) -> None:
        for phase in PHASES:
            if on_phase is not None:
                on_phase(phase.key)
            time.sleep(seconds / len(PHASES))
            if gate is not None:
                gate.wait(timeout=60)
                gate.clear()
        done.set()

    return ensure, done.is_set


def start_playwright() -> Any:
    """A started Playwright (stop it with `.stop()`); skipped where it is missing, a failure under CI=true."""
    return need("playwright.sync_api").sync_playwright().start()


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium through Playwright (its own browser download does not work here); skipped where it is
    missing, a failure under CI=true."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)


def open_studio_page(browser: Any, url: str, timeout_ms: int) -> Any:
    """A 1400 x 1000 page of the studio at `url`, once its Load data button is there (its context: page.context)."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    page.get_by_role("button", name="Load data").wait_for()
    return page
