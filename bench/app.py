"""`python -m bench app`: the default run trained inside the app against the same run from the command line.

- cli: `TrainingJob` in a fresh process, as `python -m studio train` runs it (no Compare).
- app: `python app.py` in its own process; a `gradio_client` loads the default data and presses Train (`/train`),
  then `/poll` is called every second, as the Train tab's timer does, until the job ends, the way the page calls it
  (join the queue, read the session's event stream, over one kept-open connection: `PagePoller`).
- app-gradio-client: the same, polled with `gradio_client` instead. That client opens new HTTP clients for every
  call (~40 ms of CPU a call here, `poll_cpu_ms` measures it), which on a 2-core machine is taken from the training
  it watches; a visitor's browser runs on the visitor's machine. Reported on its own line, not the target.

Both train the same settings (the defaults unless `--set` changes them) with the same thread policy; the figure is
the job's own training time (run.json `train_seconds`: first step to last, model load excluded), with the wall time
from start to end next to it. Rounds are interleaved (the order flips each round); the verdict reads the ratio of the
median times, printed with the min / median / max of the ratio taken inside each round. Target: app / CLI <= 1.10.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.processes import stop_process
from bench.rounds import format_spread, ratios, round_order, spread

TARGET_RATIO = 1.10
ROOT = Path(__file__).resolve().parent.parent


def cli_run(overrides: dict[str, dict[str, Any]], loader: Any = None) -> dict[str, Any]:
    """Train the settings to the end in this process with a TrainingJob, as the command line does."""
    from bench.demo import load1
    from studio import runs
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.settings import StudioSettings, apply_overrides

    settings = apply_overrides(StudioSettings(), overrides)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        load_start, start = load1(), time.perf_counter()
        job = TrainingJob(settings, Path(tmp), queue=JobQueue(), model_loader=loader)
        job.start()
        job.join()
        wall = time.perf_counter() - start
        if job.status != "completed":
            raise RuntimeError(f"the CLI run ended {job.status}: {job.error}")
        info = runs.read_run(Path(tmp), job.run_id)
    return {"train_seconds": info.train_seconds, "wall_seconds": wall, "steps": info.step, "threads": info.threads,
            "thread_policy": info.thread_policy, "polls": 0, "load_start": load_start, "load_end": load1()}


def widget_values(overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Settings overrides as the Train endpoint's typed keyword arguments (`train_max_steps=3`, never "3")."""
    from studio.settings import StudioSettings, apply_overrides
    from ui.widgets import key

    settings = apply_overrides(StudioSettings(), overrides)  # coerces command-line strings to the fields' types
    return {key(section, name): getattr(getattr(settings, section), name)
            for section, values in overrides.items() for name in values}


class PagePoller:
    """Calls one event of the studio the way its page does: join the queue, then read the session's event stream
    until the event's result, over one HTTP connection kept open (as a browser keeps it)."""

    def __init__(self, url: str, session_hash: str, api_name: str = "poll") -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
        self.session_hash = session_hash
        config = self._get_json("/config")
        dep = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
        components = {c["id"]: c for c in config["components"]}
        self.fn_index, self.trigger = dep["id"], (dep.get("targets") or [[None]])[0][0]
        # The inputs as the page sends them: session state stays on the server (null); widgets at their defaults.
        self.inputs = [None if components[i]["type"] == "state" else components[i].get("props", {}).get("value")
                       for i in dep["inputs"]]

    def _get_json(self, path: str) -> Any:
        self.conn.request("GET", path)
        return json.loads(self.conn.getresponse().read())

    def call(self) -> list[Any]:
        """One call of the event; its outputs (skipped ones as `{"__type__": "update"}`).

        A connection the server closed between two polls (a keep-alive timeout while training holds both cores) is
        opened again and the poll repeated once, as a browser does: the event only reads.
        """
        try:
            return self._call()
        except (ConnectionError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.conn.host, self.conn.port, timeout=120)
            return self._call()

    def _call(self) -> list[Any]:
        body = json.dumps({"data": self.inputs, "fn_index": self.fn_index, "session_hash": self.session_hash,
                           "event_data": None, "trigger_id": self.trigger})
        self.conn.request("POST", "/gradio_api/queue/join", body, {"Content-Type": "application/json"})
        event_id = json.loads(self.conn.getresponse().read())["event_id"]
        self.conn.request("GET", f"/gradio_api/queue/data?session_hash={self.session_hash}")
        stream, output = self.conn.getresponse(), None
        while line := stream.readline():
            if not line.startswith(b"data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                output = message.get("output") or {}
            if message.get("msg") == "close_stream":
                break
        stream.read()
        if output is None or not message.get("success", True) or "data" not in output:
            raise RuntimeError(f"/{self.fn_index} failed: {output}")
        return output["data"]

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def app_run(url: str, runs_dir: Path, overrides: dict[str, dict[str, Any]], tick: float = 1.0,
            endpoint: str = "/poll", client_kind: str = "page") -> dict[str, Any]:
    """Load the default data, press Train and poll `endpoint` every `tick` seconds until the job ends.

    `/poll` is what the Train tab's timer calls (it sends only what changed, so the status details come back only
    when they changed); `/progress` sends the whole view every time. `client_kind` "page" polls as the page does
    (`PagePoller`), "gradio_client" with `gradio_client`.
    """
    from gradio_client import Client

    from bench.demo import load1
    from studio import runs

    client = Client(url, verbose=False)
    client.predict(api_name="/load_data")
    poller = PagePoller(url, client.session_hash, endpoint.strip("/")) if client_kind == "page" else None
    load_start, start = load1(), time.perf_counter()
    details = client.predict(api_name="/train", **widget_values(overrides))[5]  # the view the page starts from
    polls, poll_cpu = 0, 0.0
    while True:
        began, began_cpu = time.perf_counter(), time.process_time()
        latest = (poller.call() if poller else client.predict(api_name=endpoint))[5] or {}
        poll_cpu += time.process_time() - began_cpu
        details = details if latest.get("__type__") == "update" else latest  # skipped: unchanged since last poll
        polls += 1
        if details.get("status") not in runs.ACTIVE:
            break
        time.sleep(max(0.0, tick - (time.perf_counter() - began)))
    wall = time.perf_counter() - start
    if poller:
        poller.close()
    if details.get("status") != "completed":
        raise RuntimeError(f"the app run ended {details.get('status')}")
    info = runs.read_run(runs_dir, details["run_id"])
    return {"train_seconds": info.train_seconds, "wall_seconds": wall, "steps": info.step, "threads": info.threads,
            "thread_policy": info.thread_policy, "polls": polls, "poll_cpu_ms": 1000 * poll_cpu / max(polls, 1),
            "client": client_kind, "load_start": load_start, "load_end": load1()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_process(runs_dir: Path, timeout: float = 180, root: Path = ROOT) -> Iterator[str]:
    """`python app.py` (of the checkout at `root`) on a free port with its runs in `runs_dir`; yields its URL and
    stops it afterwards.

    The server's output goes to `runs_dir/../app.log`; a failure inside the block quotes its last lines.
    """
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    log = runs_dir.parent / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--runs-dir", str(runs_dir)],
                                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + timeout
    try:
        while True:
            try:
                urllib.request.urlopen(url + "gradio_api/info", timeout=5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"app.py did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield url
    except Exception as exc:
        raise RuntimeError(f"{exc}\napp.py said:\n{log.read_text(errors='replace')[-3000:]}") from exc
    finally:
        stop_process(proc)


SIDES = {"cli": "command line (TrainingJob)", "app": "app.py, polled as the page polls",
         "app-gradio-client": "app.py, polled with gradio_client"}


def bench_app(rounds: int, overrides: dict[str, dict[str, Any]], sides: dict[str, Callable[[], dict[str, Any]]],
              say: Callable[[str], None] = print) -> dict[str, Any]:
    """`rounds` of every side ("cli", "app", optionally "app-gradio-client"), interleaved (the order reverses every
    round); medians and the app/CLI ratios."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for round_ in range(rounds):
        for name in round_order(sides, round_):
            r = sides[name]()
            results[name].append(r)
            say(f"  round {round_ + 1} {name:17s} train {r['train_seconds']:6.1f} s  wall {r['wall_seconds']:6.1f} s  "
                f"{r['steps']} steps  threads {r['threads']} {r['thread_policy']}  polls {r['polls']}  "
                f"client CPU {r.get('poll_cpu_ms', 0):.1f} ms a poll  load {r['load_start']}->{r['load_end']}")
    return summarise_app(results, overrides)


def summarise_app(results: dict[str, list[dict[str, Any]]], overrides: dict[str, Any]) -> dict[str, Any]:
    """Medians of every side, the ratios app / CLI (of the medians, and round by round) and the PASS/FAIL of the
    target (the page-polled app, on the ratio of the medians)."""
    out: dict[str, Any] = {"overrides": overrides, "target_ratio": TARGET_RATIO}
    for name, rs in results.items():
        out[name] = {"train_seconds": statistics.median(r["train_seconds"] for r in rs),
                     "wall_seconds": statistics.median(r["wall_seconds"] for r in rs),
                     "rounds_train_seconds": [round(r["train_seconds"], 1) for r in rs],
                     "threads": rs[0]["threads"], "thread_policy": rs[0]["thread_policy"],
                     "polls": max(r["polls"] for r in rs),
                     "poll_cpu_ms": statistics.median(r.get("poll_cpu_ms", 0.0) for r in rs),
                     "loads": [[r["load_start"], r["load_end"]] for r in rs]}
    cli = [r["train_seconds"] for r in results["cli"]]
    for name, rs in results.items():
        if name != "cli":
            out[name]["ratio"] = out[name]["train_seconds"] / out["cli"]["train_seconds"]
            out[name]["wall_ratio"] = out[name]["wall_seconds"] / out["cli"]["wall_seconds"]
            n = min(len(rs), len(cli))  # the rounds both sides ran
            out[name]["ratio_range"] = spread(ratios([r["train_seconds"] for r in rs[:n]], cli[:n]))
    out.update({k: out["app"][k] for k in ("ratio", "wall_ratio", "ratio_range")})
    out["pass"] = out["ratio"] <= TARGET_RATIO
    return out


def app_table(a: dict[str, Any]) -> list[str]:
    """The app-vs-CLI figures as readable lines."""
    lines = [f"App vs command line (the same run; the app polled every second like the Train tab; "
             f"{a['cli']['threads']} threads {a['cli']['thread_policy']})"]
    for name, label in SIDES.items():
        if name not in a:
            continue
        c = a[name]
        client = f"  client CPU {c['poll_cpu_ms']:.1f} ms a poll" if name != "cli" else ""
        ratio = f"  {c['ratio']:.2f}x" if name != "cli" else ""
        lines.append(f"  {label:36s} train {c['train_seconds']:6.1f} s  wall {c['wall_seconds']:6.1f} s{ratio}  "
                     f"rounds {c['rounds_train_seconds']}{client}  loads {c['loads']}")
    lines.append(f"  app / CLI: training {a['ratio']:.2f}x, wall {a['wall_ratio']:.2f}x; round by round "
                 f"{format_spread(a['ratio_range'])}  "
                 f"{'PASS' if a['pass'] else 'FAIL'} (target <= {a['target_ratio']:.2f}x, polled as the page polls)")
    return lines


def app_command(rounds: int, overrides: dict[str, dict[str, Any]], run_worker: Callable[..., dict[str, Any]],
                say: Callable[[str], None] = print) -> dict[str, Any]:
    """The bench line: the CLI side in fresh worker processes, the app sides as `python app.py` + a polling client."""
    def app_side(client_kind: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp, \
                    app_process(Path(tmp) / "studio-runs") as url:
                return app_run(url, Path(tmp) / "studio-runs", overrides, client_kind=client_kind)
        return run

    def run_cli() -> dict[str, Any]:
        return run_worker({"kind": "cli_run", "overrides": overrides})

    sides = {"cli": run_cli, "app": app_side("page"), "app-gradio-client": app_side("gradio_client")}
    return bench_app(rounds, overrides, sides, say)
