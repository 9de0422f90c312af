"""The bench's pure parts (FLOPs, padding, medians, verdicts, tables, JSON) and a tiny end-to-end run of it."""
from __future__ import annotations

import json

import pytest

from bench import demo as bench_demo
from bench import summary
from bench.flops import ModelShape, gemm_flops_per_second, lora_parameters, model_shape, scoring_flops, training_flops
from bench.launch import summarise_launch
from bench.measure import completion_loss, summarise_steps
from bench.report import format_table
from bench.train import run_contender
from studio.model.loading import LoadedModel
from tests.tiny import make_tiny_model

SHAPE = ModelShape(n_body=1000, hidden=10, vocab=100, layers=2, attn_width=4)


def test_training_flops_counts_each_term_as_documented():
    # body 4*1000*6 + LoRA 6*50*6 + attention 12*2*4*(3*4/2 + 3*4/2)=12*2*4*12 + head 4*10*100*2
    assert training_flops(SHAPE, 50, positions=6, head_positions=2, lengths=[3, 3]) == \
        24_000 + 1_800 + 1_152 + 8_000


def test_scoring_flops_are_the_forward_terms_over_padded_batches():
    # batches [3, 2] and [4]: padded positions 2*3 + 1*4 = 10, causal pairs 2*6 + 10 = 22
    # body 2*1000*10 + LoRA 2*50*10 + attention 4*2*4*22 + head 2*10*100*5
    assert scoring_flops(SHAPE, 50, [[3, 2], [4]], head_positions=5) == 20_000 + 1_000 + 704 + 10_000
    assert scoring_flops(SHAPE, 0, [], head_positions=5) == 10_000  # the head alone


def test_head_positions_are_what_separates_the_contenders():
    only_answers = training_flops(SHAPE, 0, positions=30, head_positions=6, lengths=[30])
    every_position = training_flops(SHAPE, 0, positions=30, head_positions=29, lengths=[30])
    assert every_position - only_answers == 4 * 10 * 100 * 23


def test_model_shape_of_a_lora_model_excludes_the_adapter(tiny_tokenizer):
    from peft import LoraConfig, get_peft_model

    model = make_tiny_model(tiny_tokenizer)
    plain = model_shape(model)
    config = model.config
    assert plain.vocab == config.vocab_size and plain.hidden == config.hidden_size and plain.layers == 2
    assert plain.attn_width == config.num_attention_heads * config.head_dim
    lora = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    assert model_shape(lora).n_body == plain.n_body
    assert lora_parameters(lora) == 2 * 2 * ((32 + 32) + (32 + 16))  # r * (in + out) per module, 2 layers


def _step(seconds, real, positions, head=5, lengths=(10,), threads=2):
    return {"seconds": seconds, "cpu_seconds": seconds / 2, "real": real, "positions": positions, "head": head,
            "lengths": list(lengths), "threads": threads}


def test_summary_skips_warmup_takes_medians_and_counts_padding():
    steps = [_step(9.0, 10, 20), _step(1.0, 10, 20), _step(2.0, 10, 20), _step(4.0, 30, 40)]
    s = summarise_steps(steps, SHAPE, n_lora=0, warmup=1)
    assert s["measured_steps"] == 3 and s["seconds_per_step"] == 2.0
    assert s["tokens_per_second"] == 7.5  # per-step rates 10, 5, 7.5
    assert s["tokens_per_cpu_second"] == 15.0  # each step spent half its wall time on this process's CPU
    assert s["padding_fraction"] == pytest.approx(1 - 60 / 100)
    assert s["real_tokens"] == 60 and s["threads"] == 2


def test_gemm_rate_is_positive_and_sized_by_the_flop_count():
    assert gemm_flops_per_second(size=64, threads=1, repeats=1) > 1e6


def _figures():
    contender = {"tokens_per_second": 100.0, "seconds_per_step": 2.0, "padding_fraction": 0.1, "final_loss": 1.0,
                 "peak_rss_gb": 2.5, "mfu": 0.4, "gflops": 60.0, "flops_per_real_token": 6e8, "threads": 1,
                 "head_share_of_positions": 0.2, "load_seconds": 3.0, "loads": [[1.0, 1.5]],
                 "rounds_tokens_per_second": [100.0]}
    one = lambda value: {"min": value, "median": value, "max": value, "rounds": [value]}  # noqa: E731
    contender["mfu_range"] = one(0.4)
    train = {"gemm_ceiling_gflops": 150.0, "gemm_ceiling_range": one(150.0), "rounds": 1, "ceiling_loads": [1.0],
             "ceiling_threads": 2,
             "studio": {**contender, "first_loss_seconds": 9.0},
             "trl": {**contender, "tokens_per_second": 40.0, "final_loss": 1.01},
             "tutorial": {**contender, "tokens_per_second": 20.0},
             "studio-balanced": {**contender, "tokens_per_second": 110.0}}
    train.update(ratio_vs_trl=2.5, ratio_vs_tutorial=5.0, loss_gap_vs_trl=0.01 / 1.01, identical_initial_adapter=True,
                 ratio_vs_trl_range=one(2.5), ratio_vs_tutorial_range=one(5.0), balanced_vs_pinned_range=one(1.1))
    gen = {"seconds": 1.0, "prompts_per_second": 8.0, "generated_tokens": 100, "tokens_per_second": 100.0,
           "runs": [1.0], "loads": [1.0]}
    evaluation = {"prompts": 8, "max_new_tokens": 16, "batch_size": 24, "peak_rss_bytes": 2e9, "studio": gen,
                  "single": {**gen, "prompts_per_second": 1.0}, "pipeline": {**gen, "prompts_per_second": 0.5},
                  "identical": 8, "first_difference": None, "ratio_vs_single": 8.0, "ratio_vs_pipeline": 16.0,
                  "ratio_vs_single_range": one(8.0), "ratio_vs_pipeline_range": one(16.0)}
    latency = {"warm_load_s": 3.0, "warm_load_again_s": 1.0, "warm_load_load": 1.0, "first_loss_s": 9.0,
               "ask": {"idle_s": 4.0, "training_s": 6.0, "ratio": 1.5, "max_new_tokens": 16, "load_idle": 1.0,
                       "load_training": 2.0}}
    app = {"cli": {"train_seconds": 60.0, "wall_seconds": 65.0, "rounds_train_seconds": [60.0], "threads": 2,
                   "thread_policy": "pinned", "loads": [[1.0, 1.1]]},
           "app": {"train_seconds": 63.0, "wall_seconds": 70.0, "rounds_train_seconds": [63.0], "threads": 2,
                   "thread_policy": "pinned", "loads": [[1.0, 1.2]], "poll_cpu_ms": 1.0, "ratio": 1.05,
                   "wall_ratio": 70 / 65},
           "ratio": 1.05, "wall_ratio": 70 / 65, "ratio_range": one(1.05), "pass": True, "target_ratio": 1.10}
    run = {"status": "completed", "error": "", "first_loss_seconds": 5.0, "final_loss": 2.0, "wall_seconds": 20.0}
    launch = summarise_launch({"steps": 6, "batch_per_step": 8, "runs": {
        "one_process_two_threads": [{**run, "tokens_per_second": 60.0}],
        "two_processes_one_thread": [{**run, "tokens_per_second": 57.0, "first_loss_seconds": 12.0}]}})
    return {"cpu_count": 2, "threads": 2, "load_start": 1.0, "load_end": 1.2, "train": train, "eval": evaluation,
            "latency": latency, "app": app, "launch": launch}


def test_verdicts_pass_fail_and_skip():
    figures = _figures()
    verdicts = summary.verdicts(figures)
    assert [name for name, ok in verdicts.items() if not ok] == ["training >= 3x TRL defaults",
                                                                  "MFU >= 50% of the GEMM ceiling"]
    figures["train"]["identical_initial_adapter"] = False
    figures["train"]["loss_gap_vs_trl"] = 0.03
    failed = [name for name, ok in summary.verdicts(figures).items() if not ok]
    assert "every contender starts from the same LoRA weights" in failed and "final loss within 2% of TRL" in failed
    figures["app"]["ratio"] = 1.2
    assert summary.verdicts(figures)["training in the app <= 1.10x the command line"] is False
    figures["eval"]["identical"] = 7
    assert summary.verdicts(figures)["batched eval >= 6x one at a time, identical"] is False
    del figures["latency"]
    assert summary.verdicts(figures)["warm load < 5 s"] is None


def test_table_shows_every_contender_ratio_and_verdict_and_the_json_round_trips():
    figures = _figures()
    figures["verdicts"] = summary.verdicts(figures)
    table = format_table(figures)
    for text in ("(a) studio TrainingJob", "(b) TRL SFTTrainer", "(c) tutorial Trainer", "(a') studio, adaptive",
                 "2.50x", "5.00", "identical (a) vs (b): 8/8", "PASS  warm load < 5 s", "FAIL  MFU", "1.0-1.5",
                 "identical for every contender", "4.0 s idle, 6.0 s while a job trains", "app / CLI: training 1.05x",
                 "2 thread(s) pinned"):
        assert text in table
    assert json.loads(json.dumps(figures, default=float))["train"]["ratio_vs_trl"] == 2.5


def test_demo_verdicts_and_table():
    figures = {"train_s": 70.0, "first_loss_s": 9.0, "base_gen_s": 5.0, "tuned_gen_s": 4.0, "compare_s": 10.0,
               "total_s": 85.0, "steps": 20, "final_loss": 0.3, "n_test": 24, "bleu_base": 0.3, "bleu_tuned": 60.0,
               "bleu_gain": 59.7, "bleu_ci": [41.0, 75.0], "chrf_base": 18.0, "chrf_tuned": 80.0, "exact_base": 0,
               "exact_tuned": 12, "peak_rss_gb": 2.6, "load_start": 1.0, "load_end": 1.1,
               "examples": [("A B", "junk", "A B")]}
    assert all(bench_demo.demo_verdicts(figures).values())
    table = bench_demo.demo_table(figures)
    assert "FAIL" not in table and "0.3 -> 60.0 (+59.7) [95% CI +41.0, +75.0]" in table
    assert not bench_demo.demo_verdicts({**figures, "total_s": 95.0})["train + compare <= 90 s (first run)"]
    assert not bench_demo.demo_verdicts({**figures, "bleu_ci": [19.0, 70.0]})["95% interval of the gain above +20"]
    repeated = {**figures, "repeats": [{"total_s": 85.0, "bleu_base": 0.3, "bleu_tuned": 60.0, "answers_sha": "a",
                                        "load_start": 1.0}] * 2, "same_every_run": False}
    assert not bench_demo.demo_verdicts(repeated)["same answers and numbers on all 2 runs"]


def test_docs_demo_is_judged_by_graded_facts():
    graded = {"right": 25, "wrong": 25, "refused": 0, "declined": 5, "answered": 1, "facts": 50, "off_topic": 6}
    figures = {"total_s": 280.0, "graded": graded}
    assert all(bench_demo.demo_verdicts(figures).values())
    assert not all(bench_demo.demo_verdicts({**figures, "graded": {**graded, "right": 24, "wrong": 26}}).values())
    assert not bench_demo.demo_verdicts({**figures, "graded": {**graded, "refused": 1}})["no on-topic question refused"]
    assert not all(bench_demo.demo_verdicts({**figures, "graded": {**graded, "declined": 4}}).values())


@pytest.fixture()
def tiny_loader(tiny_tokenizer):
    def loader(model_settings, token=None, **kwargs):
        return LoadedModel(make_tiny_model(tiny_tokenizer), tiny_tokenizer, "tiny", "local", 0.01, False)
    return loader


def test_tiny_end_to_end_bench(tiny_loader, tiny_tokenizer):
    import torch

    from bench.eval import run_eval
    from bench.train import CONTENDERS

    raw = {"runs": {}, "ceilings": [{"flops_per_second": 1e9, "load": 1.0, "threads": 1}]}
    for name in CONTENDERS:
        torch.rand(3)  # whatever the process did before, every contender starts from the same LoRA weights
        result = run_contender(name, steps=2, examples=8, seed=1, warmup=1, pad_to=96, threads=1, prompts=2,
                               loader=tiny_loader)
        assert result["steps"] == 2 and result["real_tokens"] > 0 and result["final_loss"] > 0
        raw["runs"][name] = [result]
    train = summary.summarise_training(raw)
    assert train["identical_initial_adapter"] and train["loss_gap_vs_trl"] < 0.02
    assert train["studio"]["threads"] == 1
    # Only the studio projects just the answer positions; the tutorial pads, the others pad to the batch's longest.
    assert train["studio"]["head_share_of_positions"] < 0.5 < train["trl"]["head_share_of_positions"]
    assert train["tutorial"]["padding_fraction"] > train["studio"]["padding_fraction"]
    assert train["studio"]["first_loss_seconds"] > 0
    evaluation = summary.summarise_eval(run_eval(3, 2, loader=tiny_loader, max_new_tokens=4))
    assert evaluation["identical"] == 3 and evaluation["studio"]["generated_tokens"] > 0
    assert len(evaluation["ratio_vs_single_range"]["rounds"]) == 2  # a ratio per round
    figures = {"cpu_count": 2, "load_start": 1.0, "load_end": 1.0, "train": train, "eval": evaluation}
    figures["verdicts"] = summary.verdicts(figures)
    assert "Training (GEMM ceiling" in format_table(figures)
    json.dumps(figures, default=float)


def test_completion_loss_is_the_mean_over_answer_tokens(tiny_loader, tiny_tokenizer):
    import torch

    from studio.data.formatting import Features

    model = tiny_loader(None).model
    feats = [Features(input_ids=[2, 10, 11, 12], completion_mask=[0, 0, 1, 1], n_prompt=2, n_completion=2,
                      truncated=False)]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[2, 10, 11, 12]])).logits[0, 1:3]
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([11, 12])).item()
    assert completion_loss(model, feats) == pytest.approx(expected, rel=1e-5)


def test_tiny_demo_reports_every_figure(tiny_loader, tmp_path):
    from studio.settings import StudioSettings, apply_overrides

    settings = apply_overrides(StudioSettings(), {"train": {"max_steps": 1}, "data": {"max_test_examples": 2},
                                                  "generation": {"max_new_tokens": 3}})
    figures = bench_demo.run_demos(settings, 2, tmp_path, say=lambda line: None, model_loader=tiny_loader)
    assert figures["steps"] == 1 and figures["n_test"] == 2 and figures["total_s"] >= figures["train_s"]
    assert figures["threads"] >= 1 and len(figures["repeats"]) == 2
    assert figures["gemm_gflops"] > 0 and "GFLOP/s at the start" in bench_demo.demo_table(figures)
    assert figures["same_every_run"], figures["repeats"]  # seeded before LoRA wraps: the same run twice
    assert set(bench_demo.demo_verdicts(figures)) and json.dumps(figures)


def test_the_meter_counts_the_head_positions_of_the_fused_head_loss_too(tiny_tokenizer):
    from peft import LoraConfig, get_peft_model

    from bench.measure import Meter
    from studio.train.trainer import fast_completion_loss

    model = get_peft_model(make_tiny_model(tiny_tokenizer), LoraConfig(r=4, target_modules=["q_proj"]))
    meter = Meter(model)
    enc = tiny_tokenizer(["### Instruction:\nSay hi\n\n### Response:\nhi there"], return_tensors="pt")
    labels = enc["input_ids"].clone()
    labels[:, :4] = -100
    inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}
    for fused in (True, False):
        fast_completion_loss(model, inputs, fused_head=fused).backward()
        meter.step_end()
    trained = int((labels[:, 1:] != -100).sum())
    assert [s["head"] for s in meter.steps] == [trained, trained]
