"""The CPU launcher that forks the ranks from one import (studio.train.forklaunch): the command the job builds, and
the ranks' environment, signals and exit codes as `accelerate launch` would give them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from accelerate.commands.launch import launch_command_parser

from studio.settings import StudioSettings, apply_overrides
from studio.train.launch import launch_command

ROOT = Path(__file__).resolve().parents[2]


def two(config: str = "") -> StudioSettings:
    return apply_overrides(StudioSettings(), {"train": {"num_processes": 2, "threads": 1, "accelerate_config": config}})


def test_cpu_ranks_are_forked_and_a_config_file_keeps_accelerate_launch(tmp_path):
    forked = launch_command(tmp_path / "run", two(), 1)
    assert forked[1:3] == ["-m", "studio.train.forklaunch"] and "studio.train.worker" not in forked
    split = forked.index("--")
    assert forked[split + 1:split + 4] == [str(tmp_path / "run"), "--threads", "1"]
    flags = launch_command_parser().parse_args([*forked[3:split], "-m", "x"])  # accelerate's own flags, as given
    assert flags.num_processes == 2 and flags.multi_gpu and flags.num_cpu_threads_per_process == 1
    config = tmp_path / "fsdp.yaml"
    config.write_text("distributed_type: FSDP\n")
    launched = launch_command(tmp_path / "run", two(str(config)), 1)
    assert launched[1:3] == ["-m", "accelerate.commands.launch"] and "--config_file" in launched
    assert launched[launched.index("-m", 3):][:3] == ["-m", "studio.train.worker", str(tmp_path / "run")]


def probe_rank(argv: list[str]) -> int:
    """A rank that writes what it was given (environment, SIGTERM's handler) and fails when asked to."""
    out, fail = Path(argv[0]), argv[1] == "fail"
    rank = os.environ["RANK"]
    keys = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT", "ACCELERATE_MIXED_PRECISION", "OMP_NUM_THREADS")
    record = {key: os.environ.get(key) for key in keys}
    record["sigterm_default"] = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    return 3 if fail and rank == "1" else 0


def launch_probe(out: Path, mode: str) -> subprocess.CompletedProcess:
    flags = ["--num_processes", "2", "--multi_gpu", "--num_machines", "1", "--main_process_port", "0",
             "--mixed_precision", "no", "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1"]
    code = ("import sys; from studio.train import forklaunch; from tests.train.test_forklaunch import probe_rank; "
            f"sys.exit(forklaunch.main({flags + ['--', str(out), mode]!r}, rank_main=probe_rank))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_forked_ranks_get_accelerates_environment_and_default_signals(tmp_path):
    done = launch_probe(tmp_path, "ok")
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["RANK"] for r in ranks] == ["0", "1"] and {r["WORLD_SIZE"] for r in ranks} == {"2"}
    assert ranks[0]["MASTER_PORT"] == ranks[1]["MASTER_PORT"] and int(ranks[0]["MASTER_PORT"]) > 0
    assert {r["ACCELERATE_MIXED_PRECISION"] for r in ranks} == {"no"} and {r["OMP_NUM_THREADS"] for r in ranks} == {"1"}
    assert all(r["sigterm_default"] for r in ranks)  # the agent's handler would turn the agent's SIGTERM into an error


def test_a_failing_rank_fails_the_launch(tmp_path):
    done = launch_probe(tmp_path, "fail")
    assert done.returncode == 1 and "exitcode" in done.stderr and (tmp_path / "rank0.json").is_file()
