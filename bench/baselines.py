"""The baseline training contenders of `python -m bench` (the studio's own is in bench/train.py).

- trl:      TRL `SFTTrainer` as a tutorial calls it: prompt/completion rows (completion-only loss), `peft_config`,
            every other SFTConfig default (gradient checkpointing on, entropy + token accuracy over the full
            vocabulary, every position scored through the head on a CPU, random batches padded to the longest,
            fused AdamW). TRL seeds torch with args.seed right before it wraps the model, as the studio does.
- tutorial: `transformers.Trainer`, each example padded with EOS to a fixed length, labels = input ids (loss on the
            whole sequence, padding included), batch 1 with 4 accumulation steps, seeded before wrapping.
"""
from __future__ import annotations

import tempfile
from typing import Any

from bench.measure import Meter, adapter_fingerprint, finish, meter_callback


def shared_inputs(settings: Any, loader: Any = None) -> tuple[Any, Any, Any, list[Any]]:
    """Loaded base model, template, splits and the tokenised training features, as the studio makes them."""
    from studio.data.formatting import tokenize_dataset
    from studio.data.templates import template_for
    from studio.model.loading import load_base_model
    from studio.train.steps import prepare_data

    splits = prepare_data(settings)
    loaded = (loader or load_base_model)(settings.model)
    d = settings.data
    template = template_for(d, loaded.tokenizer)
    features = tokenize_dataset(loaded.tokenizer, template, splits.train, d.max_length)
    return loaded, template, splits, features


def run_trl(settings: Any, warmup: int, pad_to: int, loader: Any = None) -> dict[str, Any]:
    """TRL SFTTrainer with its defaults; only what must match the others (data, LoRA, lr, steps, seed) is passed."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from studio.train.config import build_lora_config

    loaded, template, splits, features = shared_inputs(settings, loader)
    loaded.tokenizer.padding_side = "right"
    rows = [{"prompt": template.prompt(ex), "completion": ex.output} for ex in splits.train]
    t = settings.train
    with tempfile.TemporaryDirectory(prefix="trl-bench-") as tmp:
        args = SFTConfig(output_dir=tmp, max_steps=t.max_steps, per_device_train_batch_size=t.batch_size,
                         learning_rate=t.learning_rate, seed=t.seed, bf16=False, use_cpu=True, report_to="none",
                         save_strategy="no", disable_tqdm=True)
        # SFTTrainer seeds torch with args.seed right before it wraps the model with peft, as the studio does.
        trainer = SFTTrainer(model=loaded.model, args=args, train_dataset=Dataset.from_list(rows),
                             processing_class=loaded.tokenizer, peft_config=build_lora_config(settings.lora, loaded.model))
        initial = adapter_fingerprint(trainer.model)
        meter = Meter(trainer.model, head_on_every_position=True)
        trainer.add_callback(meter_callback(meter))
        trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    return finish(trainer.model, meter, features, warmup, losses, loaded.load_seconds, initial)


def run_tutorial(settings: Any, warmup: int, pad_to: int, loader: Any = None) -> dict[str, Any]:
    """transformers.Trainer on examples padded with EOS to `pad_to` tokens, loss on every position, batch 1 x 4."""
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator, set_seed

    from studio.train.config import build_lora_config

    loaded, template, splits, features = shared_inputs(settings, loader)
    eos = loaded.tokenizer.eos_token_id
    rows = []
    for f in features:
        ids = list(f.input_ids)[:pad_to]
        padded = ids + [eos] * (pad_to - len(ids))  # pad = EOS and labels = input ids, as the tutorial does
        rows.append({"input_ids": padded, "attention_mask": [1] * len(ids) + [0] * (pad_to - len(ids)),
                     "labels": list(padded)})
    set_seed(settings.train.seed)  # the same initial LoRA weights as the other contenders
    model = get_peft_model(loaded.model, build_lora_config(settings.lora, loaded.model))
    initial = adapter_fingerprint(model)
    t = settings.train
    with tempfile.TemporaryDirectory(prefix="tutorial-bench-") as tmp:
        args = TrainingArguments(output_dir=tmp, max_steps=t.max_steps, per_device_train_batch_size=1,
                                 gradient_accumulation_steps=4, learning_rate=t.learning_rate, warmup_steps=1,
                                 seed=t.seed, use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
                                 disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                          data_collator=default_data_collator)
        meter = Meter(trainer.model)
        trainer.add_callback(meter_callback(meter))
        trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    return finish(trainer.model, meter, features, warmup, losses, loaded.load_seconds, initial)
