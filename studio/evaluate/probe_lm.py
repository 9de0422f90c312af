"""lm-evaluation-harness's HF model wrapper around the studio's already loaded model: stoppable, with progress,
and computing the output head only where a choice is scored.

Imported only once `lm_eval` is known to be installed (`studio.evaluate.probe` checks first).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from lm_eval.models.huggingface import HFLM

from studio import compat
from studio.evaluate.probe_record import ProbeStopped

# lm-eval draws one progress bar per task while it builds requests, with no switch to turn it off; the studio
# reports progress itself, so that module's bar is made silent (lm-eval is imported here only to run the probe).
compat.silence_lm_eval_task_bars()
compat.check_hflm_hooks()  # StudioLM overrides two private hooks of HFLM: fail here, not mid-probe
# HFLM asks every model whether it checkpoints activations through a name transformers 5 has deprecated.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

Progress = Callable[[int, int], None]


class StudioLM(HFLM):
    """HFLM over an in-memory model (a PeftModel or a plain causal LM): no second load, no download.

    Three additions to lm-eval's loop, all in `_model_call`, which runs once per batch:
    - `should_stop()` is checked before every batch (ProbeStopped), and `progress(done, total)` after it;
    - on a CPU, the thread count adapts to what other processes leave idle (`threads.check()`);
    - the output head runs only at the positions where a continuation is scored (`logits_to_keep` given as
      indices). On Gemma 3 270M the 640 x 262,144 head costs more than the rest of the model per position, and
      lm-eval would otherwise run it, and a full-vocabulary log-softmax, at every context position too.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int, progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None, threads: Any = None) -> None:
        super().__init__(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, backend="causal")
        self.progress, self.should_stop, self.threads = progress, should_stop, threads
        self._scored: dict[tuple[int, ...], int] = {}  # input row -> how many final positions lm-eval scores
        self._done, self._total = 0, 0

    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """lm-eval's log-likelihoods, without its progress bar (the studio reports progress itself)."""
        return super().loglikelihood(requests, disable_tqdm=True)

    def _loglikelihood_tokens(self, requests: list, disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        self._scored = {}
        for _, context, continuation in requests:  # each row exactly as lm-eval builds it: last token dropped
            row = tuple((context + continuation)[-(self.max_length + 1):][:-1])
            self._scored[row] = max(self._scored.get(row, 0), len(continuation))
        # lm-eval runs one forward row per distinct context + continuation[:-1] (its one-token logits cache).
        self._done = 0
        self._total = len(self._scored) if self.logits_cache else len(requests)
        return super()._loglikelihood_tokens(requests, disable_tqdm=True, override_bs=override_bs)

    def _model_call(self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None,
                    labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.should_stop is not None and self.should_stop():
            raise ProbeStopped()
        if self.threads is not None:  # a studio.model.threads.ThreadBalancer: yield cores other processes took
            self.threads.check()
        positions = sorted(set().union(*(self._scored_positions(row) for row in inps.tolist())))
        first, width = positions[0], inps.shape[1]
        with torch.no_grad():
            kept = self.model(inps, logits_to_keep=torch.tensor(positions)).logits
        # lm-eval slices each row's continuation counting back from the last position it gets, so it gets every
        # position from `first` on; those no continuation is scored at stay zero and are never read.
        logits = kept.new_zeros(inps.shape[0], width - first, kept.shape[-1])
        logits[:, [p - first for p in positions]] = kept
        self._done += inps.shape[0]
        if self.progress is not None:
            self.progress(min(self._done, self._total), self._total)
        return logits

    def _scored_positions(self, row: list[int]) -> range | set[int]:
        """The positions of a right-padded input row (padding id 0) whose logits lm-eval scores.

        A real token can have id 0 too, so every length whose prefix is a known row and whose rest is zeros is a
        candidate, and the positions of all candidates are kept; an unknown row keeps every position.
        """
        found: set[int] = set()
        for end in range(len(row), 0, -1):
            if (scored := self._scored.get(tuple(row[:end]))) is not None:
                found.update(range(max(0, end - scored), end))
            if row[end - 1] != 0:
                break  # a real token: any shorter prefix would leave it in the padding
        return found or range(len(row))
