"""The child process group of a run on several processes: started, followed through the run folder, ended.

Rank 0 appends `metrics.jsonl` (tailed here into the job's history, so the live chart, ETA and tokens/s keep
working) and reports the step count and the outcome in `launch.json`; a Stop is the `stop` file, which every rank
checks after each step. Why a process group (`start_new_session`): Stop's last resort and the job's cleanup signal
every rank at once, and a Ctrl-C in the terminal reaches the app alone, which stops the processes cleanly. Also the
words for a process that died, which the app and the ranks share.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.errors import TrainingError
from studio.runs import RunFolder

POLL_SECONDS = 0.25  # how often the job reads the processes' files: a loss point shows within this of being logged
STOP_GRACE_SECONDS = 120  # after a Stop, how long the ranks may take to finish their step and save before SIGTERM
KILL_GRACE_SECONDS = 10  # after SIGTERM, before SIGKILL
# what a launch's processes run: ranks started by `accelerate launch` name the worker; forked ones, their launcher
LAUNCHERS = ("studio.train.worker", "studio.train.forklaunch")


@dataclass(frozen=True)
class Outcome:
    """What rank 0 reported when the processes ended: optimiser steps done of how many, and why it ended early."""

    step: int
    total_steps: int
    stop_reason: str = ""


class LaunchedTraining:
    """The child process group of one run, followed through its run folder (see the module docstring)."""

    def __init__(self, folder: RunFolder, command: list[str], env: dict[str, str]) -> None:
        self.folder, self.command, self.env = folder, command, env
        self.proc: subprocess.Popen | None = None
        self._offset = folder.metrics_file.stat().st_size if folder.metrics_file.is_file() else 0
        self._total = 0

    def start(self) -> None:
        """Start the processes (the group of an earlier session and its stop file are cleared first)."""
        end_leftover(self.folder)
        self.folder.stop_file.unlink(missing_ok=True)
        record = {"command": self.command, "started": time.time()}
        self.folder.write_json(self.folder.launch_file, record)
        with open(self.folder.launch_log, "ab") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        self.folder.write_json(self.folder.launch_file, {**record, "group": self.proc.pid})

    def follow(self, stop: threading.Event, on_record: Callable[[dict[str, Any]], None],
               on_total: Callable[[int], None]) -> int:
        """Feed new metrics records and the step count to the job until the processes end; their exit code.

        A set `stop` writes the stop file once (every rank ends after its step); ranks that have not ended
        `STOP_GRACE_SECONDS` later are terminated.
        """
        asked: float | None = None
        while True:
            ended = self.proc.poll() is not None
            self._read_report(on_total)
            for record in self._new_records():
                on_record(record)
            if ended:
                return self.proc.returncode
            if stop.is_set() and asked is None:
                self.folder.stop_file.touch()
                asked = time.monotonic()
            if asked is not None and time.monotonic() - asked > STOP_GRACE_SECONDS:
                self.terminate()
            time.sleep(POLL_SECONDS)

    def run(self, stop: threading.Event, on_record: Callable[[dict[str, Any]], None],
            on_total: Callable[[int], None]) -> Outcome:
        """Start the processes, follow them to their end and read the outcome (`follow`, `outcome`)."""
        self.start()
        try:
            return self.outcome(self.follow(stop, on_record, on_total))
        finally:
            self.terminate()  # a failure in the job's thread must not leave the processes training

    def _new_records(self) -> list[dict[str, Any]]:
        """Complete lines appended to metrics.jsonl since the last read."""
        try:
            with open(self.folder.metrics_file, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self._offset += len(complete)
        out = []
        for line in complete.decode("utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def report(self) -> dict[str, Any]:
        """launch.json as it stands ({} while unreadable)."""
        try:
            return json.loads(self.folder.launch_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _read_report(self, on_total: Callable[[int], None]) -> None:
        total = int(self.report().get("total_steps") or 0)
        if total and total != self._total:
            self._total = total
            on_total(total)

    def terminate(self) -> None:
        """SIGTERM every process of the group, SIGKILL those still there after `KILL_GRACE_SECONDS`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 30)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def outcome(self, returncode: int) -> Outcome:
        """The run's outcome once the processes ended; TrainingError (one sentence) when one of them failed."""
        report = self.report()
        self.folder.stop_file.unlink(missing_ok=True)
        if report.get("error"):
            raise TrainingError(report["error"])
        if returncode != 0 or "step" not in report:
            said = last_error(self.folder.launch_log)
            raise TrainingError(lost_process_message(exit_words(returncode) + (f": {said}" if said else "")))
        return Outcome(int(report["step"]), int(report.get("total_steps") or report["step"]),
                       report.get("stop_reason") or "")


def lost_process_message(detail: str) -> str:
    """The sentence for a run whose process ended or lost the others mid-run."""
    return (f"A training process ended unexpectedly ({detail}); the checkpoints saved so far are kept, so the run "
            f"can be resumed (details in {RunFolder('.').launch_log.name}).")


PEER_LOST = ("gloo", "nccl", "connection reset", "connection closed", "broken pipe")  # a collective's peer is gone


def peer_lost(exc: BaseException) -> bool:
    """True when a collective failed because another process ended (not this process's own error)."""
    import torch.distributed as dist

    return isinstance(exc, getattr(dist, "DistError", ())) or any(w in str(exc).lower() for w in PEER_LOST)


def exit_words(returncode: int) -> str:
    """An exit code in words: "exit code 1", or the signal that ended the process."""
    if returncode < 0:
        try:
            return f"ended by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"ended by signal {-returncode}"
    return f"exit code {returncode}"


def last_error(log: Path) -> str:
    """The last "SomeError: ..." line the processes printed (shortened, no final full stop), or ""."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-200:]
    except OSError:
        return ""
    found = [line.strip() for line in lines if "Error: " in line and not line.startswith(" ")]
    return found[-1][:160].rstrip(". ") if found else ""


def end_leftover(folder: RunFolder, wait_seconds: float = 60) -> None:
    """End the process group an earlier, killed app left training on this run folder (its ranks stop by themselves
    after their step once the app is gone; this waits for that, then signals what is left)."""
    import psutil

    try:
        group = int(json.loads(folder.launch_file.read_text(encoding="utf-8")).get("group") or 0)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + wait_seconds
    while group and time.monotonic() < deadline:
        members = [p for p in psutil.process_iter(["cmdline"]) if _in_group(p, group)]
        if not members:
            return
        time.sleep(0.5)
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def runs_launch(cmdline: list[str] | None) -> bool:
    """True for the command line of a launch's process: a launcher, or a rank (forked ranks carry their launcher's)."""
    command = " ".join(cmdline or [])
    return any(name in command for name in LAUNCHERS)


def _in_group(process: Any, group: int) -> bool:
    """True for a live process of process group `group` that runs the studio's launch (a reused id is not ours)."""
    try:
        return os.getpgid(process.pid) == group and runs_launch(process.info["cmdline"])
    except (ProcessLookupError, PermissionError, OSError):
        return False
