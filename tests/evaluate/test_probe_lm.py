"""The studio's lm-eval wrapper: its output-head shortcut gives lm-eval's own log-likelihoods, to the last digit."""
from __future__ import annotations

import random

import pytest

from tests.needs import need


@pytest.fixture(scope="module")
def lm_classes():
    """(StudioLM, lm-eval's HFLM): lm-eval is the optional extra, which requirements-dev installs."""
    hflm = need("lm_eval.models.huggingface").HFLM
    from studio.evaluate.probe_lm import StudioLM  # imports lm_eval, checked just above

    return StudioLM, hflm


def requests(vocab: int, n: int = 40, seed: int = 0) -> list:
    """(key, context ids, continuation ids) of mixed lengths; some contexts end in id 0, the padding id."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        context = [rng.randrange(1, vocab) for _ in range(rng.randint(1, 12))]
        if i % 5 == 0:
            context[-1] = 0  # a real token with the padding id: the wrapper must not mistake it for padding
        continuation = [rng.randrange(0, vocab) for _ in range(rng.randint(1, 4))]
        out.append((("c", "x"), context, continuation))
    return out


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_same_log_likelihoods_as_plain_lm_eval(lm_classes, tiny_model, tiny_tokenizer, batch_size):
    StudioLM, HFLM = lm_classes
    reqs = requests(len(tiny_tokenizer))
    ours = StudioLM(tiny_model, tiny_tokenizer, batch_size)._loglikelihood_tokens(reqs)
    theirs = HFLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, batch_size=batch_size,
                  backend="causal")._loglikelihood_tokens(reqs, disable_tqdm=True)
    assert [greedy for _, greedy in ours] == [greedy for _, greedy in theirs]
    assert [ll for ll, _ in ours] == pytest.approx([ll for ll, _ in theirs], abs=1e-4)


def test_only_the_positions_of_the_continuations_are_kept(lm_classes, tiny_model, tiny_tokenizer):
    lm = lm_classes[0](tiny_model, tiny_tokenizer, 4)
    lm._scored = {(5, 6, 7, 8): 2, (5, 6, 7): 1, (3, 0): 1, (3,): 1}
    assert lm._scored_positions([5, 6, 7, 8, 0]) == {2, 3}  # row 5 6 7 8, its last 2 positions, then padding
    assert lm._scored_positions([5, 6, 7, 0, 0]) == {2}
    assert lm._scored_positions([3, 0, 0]) == {0, 1}  # id 0 could be a real token or padding: both kept
    assert lm._scored_positions([9, 9, 0]) == range(3)  # a row it does not know: every position


def test_progress_counts_forward_rows_up_to_the_total(lm_classes, tiny_model, tiny_tokenizer):
    seen = []
    lm = lm_classes[0](tiny_model, tiny_tokenizer, 8, progress=lambda done, total: seen.append((done, total)))
    lm._loglikelihood_tokens(requests(len(tiny_tokenizer), n=20))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == seen[-1][1] == 20
