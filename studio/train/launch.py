"""A run on several processes: the job's thread starts `accelerate launch ... -m studio.train.worker RUN_DIR` as a
child process group and follows it through the run folder.

What crosses between the app and the processes is files in the run folder (`RunFolder`): settings and splits in;
rank 0 appends `metrics.jsonl` (tailed here into the job's history, so the live chart, ETA and tokens/s keep
working), writes checkpoints, snapshots and the adapter, and reports the step count and the outcome in
`launch.json`; a Stop is the `stop` file, which every rank checks after each step. Why a process group
(`start_new_session`): Stop's last resort and the job's cleanup signal every rank at once, and a Ctrl-C in the
terminal reaches the app alone, which stops the processes cleanly.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import torch

import studio
from studio.errors import TrainingError
from studio.model.threads import available_cores
from studio.runs import RunFolder
from studio.settings import StudioSettings

POLL_SECONDS = 0.25  # how often the job reads the processes' files: a loss point shows within this of being logged
STOP_GRACE_SECONDS = 120  # after a Stop, how long the ranks may take to finish their step and save before SIGTERM
KILL_GRACE_SECONDS = 10  # after SIGTERM, before SIGKILL


def backend() -> str:
    """The torch.distributed backend the processes use here: nccl over GPUs, gloo over CPU cores."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def threads_per_process(settings: StudioSettings, recorded: int | None = None) -> int:
    """CPU threads of each process: the run's recorded count, else train.threads, else an equal share of the cores.

    One thread per core in all: more would have the processes take cores from each other at every parallel op.
    """
    return int(recorded or settings.train.threads or max(1, available_cores() // settings.train.num_processes))


def loader_reference(loader: Callable[..., Any] | None) -> str:
    """`module:name` of an injected model loader the processes can import themselves; "" for the default loader."""
    if loader is None:
        return ""
    module, name = getattr(loader, "__module__", ""), getattr(loader, "__qualname__", "")
    try:
        found = getattr(import_module(module), name) if module and "<" not in name else None
    except ImportError:
        found = None
    if found is not loader:
        raise TrainingError("This model loader lives only inside the app, so several training processes cannot "
                            "use it; set train.num_processes to 1.")
    return f"{module}:{name}"


def free_port() -> int:
    """A TCP port free right now on this machine, for the processes' rendezvous (two launches never share one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(
    run_dir: Path, settings: StudioSettings, threads: int, resume: Path | None = None, parent: Path | None = None,
    loader: str = "",
) -> list[str]:
    """`python -m accelerate.commands.launch ... -m studio.train.worker RUN_DIR ...` for this run."""
    from studio.train.config import resolve_precision

    t = settings.train
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(t.num_processes)]
    if t.accelerate_config.strip():  # FSDP, DeepSpeed or several machines: the file says how
        command += ["--config_file", str(Path(t.accelerate_config.strip()).expanduser())]
    else:  # DDP on this machine (accelerate's torchrun launcher; on a CPU it starts gloo processes)
        command += ["--multi_gpu", "--num_machines", "1", "--main_process_port", str(free_port())]
    bf16, fp16 = resolve_precision(t.precision)
    command += ["--mixed_precision", "bf16" if bf16 else "fp16" if fp16 else "no", "--dynamo_backend", "no"]
    if not torch.cuda.is_available():
        command += ["--num_cpu_threads_per_process", str(threads)]
    command += ["-m", "studio.train.worker", str(run_dir), "--threads", str(threads), "--app-pid", str(os.getpid())]
    for flag, value in (("--resume", resume), ("--parent", parent), ("--loader", loader)):
        if value:
            command += [flag, str(value)]
    return command


def child_environment(token: str | None) -> dict[str, str]:
    """The processes' environment: the studio importable from any working folder, the token for downloads only."""
    env = dict(os.environ)
    roots = [str(Path(studio.__file__).resolve().parent.parent), str(Path.cwd())]  # the studio, an injected loader
    env["PYTHONPATH"] = os.pathsep.join(roots + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if token:
        env["HF_TOKEN"] = token
    return env


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


def adapter_model(loaded: Any, settings: StudioSettings, folder: RunFolder) -> tuple[Any, Any, Any]:
    """(template, the base with the run's saved adapter on top in eval mode, tokenizer): the launched run's result
    held in the app as a run trained in it would be."""
    from peft import PeftModel

    from studio.data.templates import template_for

    model = PeftModel.from_pretrained(loaded.model, str(folder.adapter_dir))
    model.eval()
    return template_for(settings.data, loaded.tokenizer), model, loaded.tokenizer


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


def _in_group(process: Any, group: int) -> bool:
    """True for a live process of process group `group` that runs the studio's launch (a reused id is not ours)."""
    try:
        return os.getpgid(process.pid) == group and "studio.train.worker" in " ".join(process.info["cmdline"] or [])
    except (ProcessLookupError, PermissionError, OSError):
        return False
