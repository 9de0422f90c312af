"""Every private internal the studio touches still exists in the installed libraries (studio.compat), and a missing
one fails loudly, naming the library and its version."""
from __future__ import annotations

import importlib.util
import types

import pytest

from studio import compat


def test_transformers_trainer_still_saves_through_the_hook_fast_sft_trainer_overrides():
    compat.check_trainer_save_hook.cache_clear()
    compat.check_trainer_save_hook()


def test_transformers_still_looks_up_the_gguf_reader_at_each_call():
    compat.check_gguf_reader_lookup.cache_clear()
    compat.check_gguf_reader_lookup()


def test_the_gguf_reader_is_replaced_inside_the_block_only():
    import gguf

    original = gguf.GGUFReader
    with compat.gguf_reader_replaced(lambda reader: ("wrapped", reader)):
        assert gguf.GGUFReader == ("wrapped", original)
    assert gguf.GGUFReader is original
    with pytest.raises(KeyError), compat.gguf_reader_replaced(lambda reader: None):
        raise KeyError("a failed load")
    assert gguf.GGUFReader is original


def test_trl_still_keeps_metrics_the_studio_can_log_into(tiny_model, tiny_tokenizer, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    trainer = SFTTrainer(model=tiny_model, processing_class=tiny_tokenizer,
                         train_dataset=Dataset.from_dict({"prompt": ["a"], "completion": ["b"]}),
                         args=SFTConfig(output_dir=str(tmp_path), report_to="none", bf16=False, use_cpu=True))
    compat.log_metric(trainer, "train", "num_tokens", 7)
    assert trainer._metrics["train"]["num_tokens"] == [7]


def test_sacrebleu_statistics_rebuild_the_corpus_scores():
    import sacrebleu

    hypotheses, references = ["the cat sat", "a dog ran"], [["the cat sat", "the dog ran"]]
    for metric, corpus in ((sacrebleu.BLEU(), sacrebleu.corpus_bleu), (sacrebleu.CHRF(), sacrebleu.corpus_chrf)):
        stats = compat.corpus_statistics(metric, hypotheses, references)
        summed = [sum(column) for column in zip(*stats)]
        assert compat.score_from_statistics(metric, summed).score == pytest.approx(corpus(hypotheses, references).score)


def test_plotly_still_skips_validation_on_request():
    import plotly.graph_objects as go

    # a property plotly does not know: accepted only because validation is off
    spec = {"data": [{"type": "scatter", "x": [1], "madeup": 1}]}
    with pytest.raises(ValueError):
        go.Figure(spec)
    assert compat.unvalidated_figure(spec).to_dict()["data"][0]["x"] == [1]


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="lm-eval is the optional probe extra")
def test_lm_eval_still_has_the_hooks_the_probe_overrides():
    compat.check_hflm_hooks.cache_clear()
    compat.check_hflm_hooks()
    compat.silence_lm_eval_task_bars()


def test_a_missing_internal_names_the_library_and_its_version():
    version = compat.library_version("transformers")
    with pytest.raises(compat.InternalsChanged, match=f"transformers {version} no longer has Owner._gone"):
        compat.require(type("Owner", (), {}), "_gone", "transformers", "test")
    with pytest.raises(compat.InternalsChanged, match=r"sacrebleu \S+ no longer has .*_extract_corpus_statistics"):
        compat.corpus_statistics(types.SimpleNamespace(), ["a"], [["a"]])
    with pytest.raises(compat.InternalsChanged, match=r"trl \S+ no longer has a 'train' entry"):
        compat.log_metric(types.SimpleNamespace(_metrics={}), "train", "num_tokens", 1)
    with pytest.raises(compat.InternalsChanged, match="parameter"):
        compat.require_parameters(lambda inps: None, ("inps", "labels"), "lm_eval", "test")
    assert compat.library_version("no-such-distribution") == "(not installed)"
