"""Latency figures of `python -m bench`: model load (warm and cold), Train -> first loss point, and one question
answered by base + tuned model in the Compare tab's prompt box, idle and while a job trains in the same process."""
from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def load_seconds() -> dict[str, Any]:
    """Seconds to load the embedded model in this process, then again (as a long-running app loads it again)."""
    from studio.model.embedded import embedded_cache_ready
    from studio.model.loading import load_base_model
    from studio.settings import StudioSettings

    cold = not embedded_cache_ready()
    first = load_base_model(StudioSettings().model).load_seconds
    again = load_base_model(StudioSettings().model).load_seconds
    return {"seconds": first, "again_seconds": again, "cold": cold}


def _timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def ask_latency(repeats: int = 3, threads: int = 0, loader: Any = None, train_steps: int = 200) -> dict[str, Any]:
    """`answer_both` on a held-out question (default generation settings): idle, then while a TrainingJob trains.

    The job (default settings, `train_steps` steps, stopped once the answers are timed) loads its own copy of the
    model, as a visitor's run does in the app; both pin `threads` (0: every core), so they share the cores.
    """
    from peft import get_peft_model
    from transformers import set_seed

    from bench.demo import load1
    from studio.data.templates import template_for
    from studio.evaluate.before_after import answer_both
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.model.loading import load_base_model
    from studio.model.threads import thread_policy, use_threads
    from studio.settings import StudioSettings, apply_overrides
    from studio.train.config import build_lora_config
    from studio.train.steps import prepare_data

    settings = apply_overrides(StudioSettings(), {"train": {"threads": threads, "max_steps": train_steps}})
    example = prepare_data(settings).test[0]
    loaded = (loader or load_base_model)(settings.model)
    set_seed(settings.train.seed)
    model = get_peft_model(loaded.model, build_lora_config(settings.lora, loaded.model)).eval()
    template = template_for(settings.data, loaded.tokenizer)

    def ask() -> Any:
        return answer_both(model, loaded.tokenizer, template, example.instruction, example.input, settings.generation)

    policy = thread_policy(settings.train)
    with use_threads(policy):
        ask()  # warm-up: the first call pays one-off allocations
        load_idle, idle = load1(), _timed(ask, repeats)
        with tempfile.TemporaryDirectory(prefix="bench-ask-") as tmp:
            job = TrainingJob(settings, Path(tmp), queue=JobQueue(), model_loader=loader)
            job.start()
            while not any(r.get("loss") is not None for r in job.history()) and not job.join(timeout=0.2):
                pass
            load_busy, busy = load1(), _timed(ask, repeats)
            still_training = job.status == "training"
            job.stop()
            job.join()
    return {"idle_s": statistics.median(idle), "training_s": statistics.median(busy),
            "ratio": statistics.median(busy) / statistics.median(idle), "idle_runs": idle, "training_runs": busy,
            "threads": policy.threads, "max_new_tokens": settings.generation.max_new_tokens,
            "job_trained_throughout": still_training, "load_idle": load_idle, "load_training": load_busy}


def bench_latency(run_worker: Callable[..., dict[str, Any]], threads: int, repeats: int, skip_cold: bool,
                  first_loss_s: float | None, say: Callable[[str], None]) -> dict[str, Any]:
    """Warm load (fresh processes, cache built), cold load (cache built into a temp STUDIO_HOME), first loss point,
    and the prompt box's latency idle vs while training."""
    from bench.demo import load1

    warm = [run_worker({"kind": "load", "threads": threads}) for _ in range(2)]
    out: dict[str, Any] = {"warm_load_s": statistics.median(w["seconds"] for w in warm),
                           "warm_load_again_s": statistics.median(w["again_seconds"] for w in warm),
                           "warm_load_load": load1()}
    if first_loss_s is not None:
        out["first_loss_s"] = first_loss_s
    say(f"  warm load {out['warm_load_s']:.1f} s, again in the same process {out['warm_load_again_s']:.1f} s "
        f"(load {out['warm_load_load']})")
    if not skip_cold:
        with tempfile.TemporaryDirectory(prefix="studio-cold-") as home:
            load, cold = load1(), run_worker({"kind": "load", "threads": threads}, env={"STUDIO_HOME": home})
        out.update(cold_load_s=cold["seconds"], cold_load_load=load)
        say(f"  cold load {cold['seconds']:.1f} s (builds the fp32 cache; load {load})")
    ask = run_worker({"kind": "ask", "threads": threads, "repeats": repeats})
    out["ask"] = ask
    say(f"  one question, base + tuned: {ask['idle_s']:.1f} s idle, {ask['training_s']:.1f} s while a job trains "
        f"({ask['ratio']:.2f}x; loads {ask['load_idle']} / {ask['load_training']})")
    return out
