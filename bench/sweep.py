"""Sweep demo settings for quality and time: `python bench/sweep.py "train.learning_rate=1e-3,train.epochs=0.5" ...`.

Each argument is one candidate (comma-separated section.key=value overrides of the cpu-demo defaults). The base
model is loaded once; every candidate trains a fresh copy through TrainingJob (what the app runs), then the tuned
model answers the held-out prompts exactly as Compare does. The base answers (adapter off) are the same for every
candidate, so they are generated once. Prints one JSON line per candidate: train wall and CPU seconds, load, loss,
BLEU/exact before and after. Used to pick the cpu-demo defaults (see the TrainSettings docstring in studio/settings.py).
"""
from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(candidates: list[str]) -> None:
    from studio.data.templates import template_for
    from studio.evaluate.generation import generate
    from studio.evaluate.scoring import score
    from studio.jobqueue import JobQueue
    from studio.jobs import TrainingJob
    from studio.model.loading import LoadedModel, load_base_model
    from studio.settings import StudioSettings, apply_overrides, parse_assignments

    base = load_base_model(StudioSettings().model)
    base_answers: dict[tuple, list[str]] = {}
    for spec in candidates:
        settings = apply_overrides(StudioSettings(), parse_assignments([p for p in spec.split(",") if p]))

        def loader(model_settings, token=None):
            return LoadedModel(copy.deepcopy(base.model), base.tokenizer, "embedded", "embedded", 0.0, True)

        with tempfile.TemporaryDirectory() as tmp:
            job = TrainingJob(settings, Path(tmp), queue=JobQueue(), model_loader=loader)
            load0, cpu0, t0 = os.getloadavg()[0], time.process_time(), time.perf_counter()
            job.start()
            job.join()
            train_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
            assert job.status == "completed", job.error
            d = settings.data
            template = template_for(d, base.tokenizer)
            tests = job.splits.test[: d.max_test_examples or None]
            prompts, refs = [template.prompt(e) for e in tests], [e.output for e in tests]
            key = (d.template, d.custom_template, settings.generation.max_new_tokens)
            if key not in base_answers:
                with job.model.disable_adapter():
                    base_answers[key] = generate(job.model, base.tokenizer, prompts, settings.generation)
            g0 = time.perf_counter()
            tuned = generate(job.model, base.tokenizer, prompts, settings.generation)
            gen_s = time.perf_counter() - g0
        b, t = score(refs, base_answers[key])[0], score(refs, tuned)[0]
        losses = [r["loss"] for r in job.history() if r.get("loss") is not None]
        print(json.dumps({
            "spec": spec, "steps": job.progress()["step"], "train_s": round(train_s, 1), "cpu_s": round(cpu_s, 1),
            "tuned_gen_s": round(gen_s, 1), "load": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
            "final_loss": round(losses[-1], 3), "mean_last5_loss": round(sum(losses[-5:]) / 5, 3),
            "bleu_base": round(b.bleu, 1), "bleu_tuned": round(t.bleu, 1), "gain": round(t.bleu - b.bleu, 1),
            "exact": f"{round(b.exact_match * b.n)}->{round(t.exact_match * t.n)}/{t.n}",
            "wrong": [(ref, hyp) for ref, hyp in zip(refs, tuned) if ref.strip() != hyp.strip()],
        }), flush=True)
        del job


if __name__ == "__main__":
    main(sys.argv[1:])
