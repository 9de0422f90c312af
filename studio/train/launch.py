"""A run on several processes, the job's side: the job's thread starts `accelerate launch ... -m
studio.train.worker RUN_DIR` as a child process group (`studio.train.processes`) and follows it through the run folder.

What crosses between the app and the processes is files in the run folder (`RunFolder`): settings and splits in;
rank 0 appends `metrics.jsonl`, writes checkpoints, snapshots and the adapter, and reports the step count and the
outcome in `launch.json`. This module checks the machine can make the launch, records how the run is launched in
run.json, builds the command line and the environment, and holds the result in the app once the processes end.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import torch

import studio
from studio import runs
from studio.errors import SettingsError, TrainingError
from studio.model.threads import available_cores
from studio.runs import RunFolder
from studio.settings import StudioSettings, TrainSettings
from studio.train.processes import LaunchedTraining, Outcome


def backend() -> str:
    """The torch.distributed backend the processes use here: nccl over GPUs, gloo over CPU cores."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def check_machine(train: TrainSettings) -> None:
    """SettingsError (one sentence) for a launch this machine cannot make: an accelerate config file that is not
    there, or more processes than its GPUs (CPU cores without a GPU); nothing to check for one process."""
    config = train.accelerate_config.strip()
    if config and not os.path.isfile(os.path.expanduser(config)):
        raise SettingsError(f"train.accelerate_config {config} is not a file; write one with `accelerate config` "
                            "or leave it empty.")
    if train.num_processes > 1 and not config:  # a config file may spread the processes over several machines
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        have, what = (gpus, "GPUs") if gpus else (os.cpu_count() or 1, "CPU cores")
        if train.num_processes > have:
            raise SettingsError(f"train.num_processes is {train.num_processes}, but this machine has {have} {what}; "
                                f"use at most {have}.")


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


def forks_ranks(train: TrainSettings) -> bool:
    """True when the ranks are forked from one import (`studio.train.forklaunch`): DDP over CPU cores, no config."""
    return not torch.cuda.is_available() and not train.accelerate_config.strip()


def launch_command(
    run_dir: Path, settings: StudioSettings, threads: int, resume: Path | None = None, parent: Path | None = None,
    loader: str = "",
) -> list[str]:
    """`python -m accelerate.commands.launch ... -m studio.train.worker RUN_DIR ...` for this run; on CPUs without a
    config file `python -m studio.train.forklaunch ... -- RUN_DIR ...`, the same launch with the ranks forked from
    one import of the training stack (see that module)."""
    from studio.train.config import resolve_precision

    t = settings.train
    forked = forks_ranks(t)
    launcher = "studio.train.forklaunch" if forked else "accelerate.commands.launch"
    command = [sys.executable, "-m", launcher, "--num_processes", str(t.num_processes)]
    if t.accelerate_config.strip():  # FSDP, DeepSpeed or several machines: the file says how
        command += ["--config_file", str(Path(t.accelerate_config.strip()).expanduser())]
    else:  # DDP on this machine (accelerate's torchrun launcher; on a CPU it starts gloo processes)
        command += ["--multi_gpu", "--num_machines", "1", "--main_process_port", str(free_port())]
    bf16, fp16 = resolve_precision(t.precision)
    command += ["--mixed_precision", "bf16" if bf16 else "fp16" if fp16 else "no", "--dynamo_backend", "no"]
    if not torch.cuda.is_available():
        command += ["--num_cpu_threads_per_process", str(threads)]
    command += ["--"] if forked else ["-m", "studio.train.worker"]
    command += [str(run_dir), "--threads", str(threads), "--app-pid", str(os.getpid())]
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
class Launch:
    """One launch of a run's processes: what to run, in which environment, described for the job's log."""

    folder: RunFolder
    command: list[str]
    env: dict[str, str]
    processes: int

    def describe(self) -> str:
        """The job's log line: how many processes, over which backend."""
        return f"Training on {self.processes} processes ({backend()})"

    def train(self, stop: threading.Event, on_record: Callable[[dict[str, Any]], None],
              on_total: Callable[[int], None]) -> Outcome:
        """Run the processes to their end (`LaunchedTraining.run`): their outcome, or TrainingError in one sentence."""
        return LaunchedTraining(self.folder, self.command, self.env).run(stop, on_record, on_total)


def prepare(
    folder: RunFolder, settings: StudioSettings, recorded_threads: int | None, loader: Callable[..., Any] | None,
    token: str | None, resume: Path | None = None, parent: Path | None = None,
) -> Launch:
    """Record in run.json how the run is launched (process count, backend, config file, threads each), check the
    machine can make this launch (SettingsError otherwise), and build its command line and environment."""
    t = settings.train
    threads = threads_per_process(settings, recorded_threads)
    # Recorded first: a launch refused below still shows in the Runs tab as the launch it asked for.
    runs.update_run(folder.path, threads=threads, thread_policy="pinned", num_processes=t.num_processes,
                    backend=backend(), accelerate_config=t.accelerate_config.strip())
    check_machine(t)
    reference = loader_reference(loader)
    command = launch_command(folder.path, settings, threads, resume, parent, reference)
    return Launch(folder, command, child_environment(token), t.num_processes)


def adapter_model(loaded: Any, settings: StudioSettings, folder: RunFolder) -> tuple[Any, Any, Any]:
    """(template, the base with the run's saved adapter on top in eval mode, tokenizer): the launched run's result
    held in the app as a run trained in it would be."""
    from peft import PeftModel

    from studio.data.templates import template_for

    model = PeftModel.from_pretrained(loaded.model, str(folder.adapter_dir))
    model.eval()
    return template_for(settings.data, loaded.tokenizer), model, loaded.tokenizer
