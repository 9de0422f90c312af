"""App worker for the kill -9 test: the studio with the tiny model on a given port and runs folder, until killed.

Usage: python tests/app_worker.py RUNS_DIR PORT [SECONDS_PER_STEP]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script, Python puts tests/ first on the path, where tests/evaluate/ would shadow the `evaluate` library:
# swap it for the repository root, which makes `studio` importable.
sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app import build_app, launch_kwargs  # noqa: E402
from tests.browser_utils import tiny_loaders  # noqa: E402


def main(argv: list[str]) -> None:
    """Serve until the process is killed."""
    runs, port = Path(argv[0]), int(argv[1])
    model_loader, tokenizer_loader = tiny_loaders(step_delay=float(argv[2]) if len(argv) > 2 else 0.2)
    demo = build_app(model_loader=model_loader, tokenizer_loader=tokenizer_loader, runs_root=runs)
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs())


if __name__ == "__main__":
    main(sys.argv[1:])
