"""bench.levers: every lever against the default, rounds interleaved and alternating in direction."""
from __future__ import annotations

import types

from bench import levers


def _args(repeats: int) -> types.SimpleNamespace:
    return types.SimpleNamespace(repeats=repeats, steps=2, examples=0, seed=0, warmup=0, pad_to=64, threads=2,
                                 prompts=2, only=("train",))


def test_rounds_alternate_direction_and_ratios_use_medians():
    seen: list[str] = []
    speed = {name: 100.0 + i for i, name in enumerate(levers.TRAIN_LEVERS)}

    def worker(spec):
        name = next(n for n, o in levers.TRAIN_LEVERS.items() if o == spec["overrides"])
        seen.append(name)
        return {"tokens_per_second": speed[name], "tokens_per_cpu_second": speed[name] / 2, "seconds_per_step": 1.0,
                "threads": 2, "load_start": 0.1, "load_end": 0.2, "peak_rss_bytes": 1e9}

    out = levers.levers_command(_args(repeats=2), worker, say=lambda _: None)
    names = list(levers.TRAIN_LEVERS)
    assert seen == names + names[::-1]
    assert out["train"]["default"]["default_speedup"] == 1.0
    last = names[-1]
    assert out["train"][last]["default_speedup"] == speed["default"] / speed[last]
    assert out["generation"] is None
