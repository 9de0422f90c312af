"""The 2-minute demo: `python bench/demo.py [--set section.key=value ...] [--runs-dir DIR]`.

Runs exactly what the app runs with the default settings (TrainingJob, then pipeline.compare_run on the held-out
examples), prints the times, the scores before/after and peak memory, and ends with one JSON line.
Same as `python -m studio.bench demo`.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
