"""`python -m bench coldstart`: a first start as a Space sees it, timed from `python app.py` on an empty STUDIO_HOME.

Starts the app in a subprocess on a free port with an empty STUDIO_HOME and runs folder and, the moment the page
answers, drives it like a first visitor through gradio_client: Load data, then Train with the default settings.
Reports the seconds from launch to the page answering, to the embedded model's cache being ready (polled through
/cache_progress) and to the first loss point (/progress), each phase of the cache build, and the load average.
Then the same again on the cache just built (a warm start), the baseline: cold / warm is what a first start costs.
Target: first loss point <= 70 s after launch on 2 cores (the timing is noisy on a shared machine: read the load).

    python -m bench coldstart             # cold, then warm
    python -m bench coldstart --cold-only
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.processes import stop_process

ROOT = Path(__file__).resolve().parent.parent
TARGET_FIRST_LOSS_S = 70.0
ACTIVE = ("queued", "preparing", "training", "saving", "evaluating")


def load1() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_app(home: Path, runs: Path, port: int, log: Path) -> subprocess.Popen:
    """`python app.py` as a Space runs it, with its own studio home and runs folder."""
    env = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_RUNS_DIR": str(runs), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def _wait_for_page(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the page did not answer in time")


def _drive(client: Any, t0: float, timeout: float, say) -> dict[str, Any]:
    """Load data, press Train, then poll until the first loss point; the times are seconds since launch."""
    client.predict(api_name="/load_data")
    client.predict(api_name="/train")
    out: dict[str, Any] = {"train_pressed_s": time.perf_counter() - t0, "cache_ready_s": None, "phases": {}}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cache = client.predict(api_name="/cache_progress")[0]
        job = client.predict(api_name="/progress")[5]
        now = time.perf_counter() - t0
        if cache["state"] == "building" and cache["phase"] not in out["phases"]:
            out["phases"][cache["phase"]] = round(now, 1)
            say(f"  {now:5.1f} s  cache: {cache['label']}")
        if cache["state"] == "ready" and out["cache_ready_s"] is None:
            out["cache_ready_s"] = now
            say(f"  {now:5.1f} s  cache ready")
        if (job.get("step") or 0) >= 1:
            out["first_loss_s"] = now
            say(f"  {now:5.1f} s  first loss point (step {job['step']})")
            client.predict(api_name="/stop")
            while client.predict(api_name="/progress")[5]["status"] in ACTIVE:
                time.sleep(0.5)
            return out
        if job.get("status") == "failed":
            raise RuntimeError("training failed")
        time.sleep(0.25)
    raise RuntimeError("no loss point in time")


def first_start(home: Path, say=print, timeout: float = 900) -> dict[str, Any]:
    """Launch the app on `home`, drive a first visitor, return the times (seconds since launch) and the load."""
    from gradio_client import Client

    runs, port = Path(tempfile.mkdtemp(prefix="studio-coldstart-runs-")), _free_port()
    url, load_start = f"http://127.0.0.1:{port}/", load1()
    t0 = time.perf_counter()
    proc = _start_app(home, runs, port, home.parent / f"app-{port}.log")
    try:
        _wait_for_page(url, proc, timeout)
        page = time.perf_counter() - t0
        say(f"  {page:5.1f} s  page ready")
        figures = _drive(Client(url, verbose=False), t0, timeout, say)
    finally:
        stop_process(proc)
    rounded = {k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}
    return {"page_ready_s": round(page, 1), **rounded, "load_start": load_start, "load_end": load1()}


def run_coldstart(cold_only: bool = False, say=print) -> dict[str, Any]:
    """Cold start on an empty STUDIO_HOME, then (unless `cold_only`) a warm start on the cache it built."""
    with tempfile.TemporaryDirectory(prefix="studio-coldstart-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        say("Cold start: empty STUDIO_HOME")
        figures: dict[str, Any] = {"cpu_count": os.cpu_count(), "cold": first_start(home, say)}
        if not cold_only:
            say("Warm start: the cache just built (the baseline)")
            figures["warm"] = first_start(home, say)
            figures["cold_vs_warm_first_loss"] = round(figures["cold"]["first_loss_s"] /
                                                       figures["warm"]["first_loss_s"], 2)
    figures["verdict"] = {f"first loss point <= {TARGET_FIRST_LOSS_S:.0f} s after launch, cold":
                          figures["cold"]["first_loss_s"] <= TARGET_FIRST_LOSS_S}
    return figures


def coldstart_table(f: dict[str, Any]) -> str:
    """The figures as a few readable lines."""
    lines = ["Cold start: seconds after `python app.py` (Load data and Train pressed as soon as the page answers)",
             f"  {'':6s}{'page ready':>12s}{'cache ready':>13s}{'first loss':>12s}   load average (start -> end)"]
    for name in ("cold", "warm"):
        if name in f:
            r = f[name]
            cache = f"{r['cache_ready_s']:.1f}" if r["cache_ready_s"] is not None else "-"
            lines.append(f"  {name:6s}{r['page_ready_s']:12.1f}{cache:>13s}{r['first_loss_s']:12.1f}   "
                         f"{r['load_start']:.2f} -> {r['load_end']:.2f} on {f['cpu_count']} cores")
    if "cold_vs_warm_first_loss" in f:
        lines.append(f"  a first start costs {f['cold_vs_warm_first_loss']:.2f}x a warm one to the first loss point")
    lines += [f"  {'PASS' if ok else 'FAIL'}  {name}" for name, ok in f["verdict"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench coldstart`."""
    parser = argparse.ArgumentParser(prog="python -m bench coldstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold-only", action="store_true", help="skip the warm start (the baseline)")
    args = parser.parse_args(argv)
    figures = run_coldstart(args.cold_only, say=lambda line: print(line, flush=True))
    print(coldstart_table(figures), flush=True)
    print(json.dumps(figures))
    return 0 if all(figures["verdict"].values()) else 1
