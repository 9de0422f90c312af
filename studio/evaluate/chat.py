"""Chat with a tuned run: multi-turn prompts in the run's own template, answers streamed token by token.

Each model keeps its own conversation (the base model sees its own earlier answers, the tuned model its own), and
every prompt is the run's template applied to `Example(history=...)`: chat templates render real turns, the
single-turn ones a "User: ... / Assistant: ..." transcript, exactly as training and Compare build them. Answers
end by Compare's rule (`stop_rule`, `cut_answer`): the streamed text never shows a stop string, and the last
reply of a stream is the very text Compare would have scored. Generation runs in a worker thread that holds the
model's lock (`sharing.using`) with the adapter on or off, so a concurrent Compare or another visitor's chat never
sees the wrong adapter state; a stop (the user's, or an abandoned stream) ends it at the next token.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from studio.data.formatting import prompt_ids
from studio.errors import DataError
from studio.evaluate.generation import (
    StopRule,
    cut_answer,
    eval_mode,
    find_stop,
    generate_answers,
    generation_kwargs,
    stop_context,
    stop_rule,
)
from studio.evaluate.lengths import limit_ending
from studio.evaluate.sharing import using
from studio.examples import Example
from studio.settings import GenerationSettings

Turns = list[tuple[str, str]]  # earlier (user message, this model's answer) pairs, oldest first
MAX_PROMPT_TOKENS = 1024  # older exchanges are left out beyond this: a CPU answers long prompts slowly
# The chat's starting settings: sampled (a conversation is no benchmark) from the same seed for both models, and
# at least long enough for a sentence or two, more when the run's references are longer (`lengths.sized_to_references`);
# Compare keeps the run's own generation settings.
CHAT_GENERATION = GenerationSettings(max_new_tokens=64, do_sample=True, temperature=0.7, top_p=0.9)


@dataclass(frozen=True)
class Reply:
    """An answer as it streams: the text so far (cut by Compare's rule), and once `done`, how it ended."""

    text: str
    done: bool = False
    ending: str = ""  # "ended with <eos>", 'cut at "\n### "', "ran to the token limit", "stopped"
    dropped: int = 0  # earlier exchanges left out of the prompt to keep it short


def chat_example(turns: Turns, message: str, system: str = "") -> Example:
    """The conversation as an Example: earlier turns in `history`, the new message as the instruction."""
    history = tuple(turn for user, answer in turns for turn in (("user", user), ("assistant", answer)))
    return Example(instruction=message, output="", system=system, history=history)


def chat_prompt(template: Any, tokenizer: Any, turns: Turns, message: str, system: str = "",
                max_tokens: int = MAX_PROMPT_TOKENS) -> tuple[str, int]:
    """(prompt, exchanges left out): the oldest exchanges go until the prompt fits in `max_tokens`."""
    if not message.strip():
        raise DataError("Type a message for both models to answer.")
    example = chat_example(turns, message.strip(), system)
    dropped = 0
    prompt = template.prompt(example)
    while dropped < len(turns) and len(prompt_ids(tokenizer, prompt)) > max_tokens:
        dropped += 1
        prompt = template.prompt(example.without_oldest(dropped))
    return prompt, dropped


def held_back(text: str, stops: tuple[str, ...]) -> str:
    """The text without a trailing piece that may be the start of a stop string (shown once it is not)."""
    keep = len(text)
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                keep = min(keep, len(text) - k)
                break
    return text[:keep]


def visible_text(tokenizer: Any, ids: list[int], rule: StopRule, context: str) -> str:
    """What to show of an answer still being written: up to EOS or a stop, never a stop string's first letters."""
    end = next((i for i, t in enumerate(ids) if t in rule.eos_ids or t in rule.token_ids), len(ids))
    text = tokenizer.decode(ids[:end], skip_special_tokens=True)
    at = find_stop(text, rule.texts, context)
    return (text[:at] if at is not None else held_back(text, rule.texts)).strip()


def _ending(tokenizer: Any, ids: list[int], rule: StopRule, context: str, stopped: bool, limit: int) -> str:
    """How a finished answer ended, in the words Compare's raw-answer badges use."""
    if stopped:
        return "stopped"
    end = next((i for i, t in enumerate(ids) if t in rule.eos_ids or t in rule.token_ids), None)
    text = tokenizer.decode(ids[:end], skip_special_tokens=True)
    found = [(at, stop) for stop in rule.texts if (at := find_stop(text, (stop,), context)) is not None]
    if found:
        return f"cut at {min(found)[1]!r}"
    if end is not None:
        return f"ended with {tokenizer.convert_ids_to_tokens(ids[end])}"
    if len(ids) < limit:
        return "ended"
    return limit_ending(text)


class _IdStreamer(BaseStreamer):
    """Hands each new token id to a queue (the prompt, which generate sends first, is skipped)."""

    def __init__(self, out: queue.Queue) -> None:
        self.out, self.prompt_seen = out, False

    def put(self, value: torch.Tensor) -> None:
        """One step's token ids (the first call is the prompt)."""
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.out.put(value.reshape(-1).tolist())

    def end(self) -> None:
        """Generation finished (the worker reports the end itself)."""


class _EndWhen(StoppingCriteria):
    """Ends generation at a stop string (the id stops and EOS end it in `generate`) or when told to stop."""

    def __init__(self, tokenizer: Any, rule: StopRule, context: str, width: int, stop: threading.Event) -> None:
        self.tokenizer, self.rule, self.context, self.width, self.stop = tokenizer, rule, context, width, stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        new = input_ids[0, self.width:].tolist()
        ended = self.stop.is_set() or any(t in self.rule.token_ids for t in new) or \
            find_stop(self.tokenizer.decode(new, skip_special_tokens=True), self.rule.texts, self.context) is not None
        return torch.full((input_ids.shape[0],), ended, dtype=torch.bool, device=input_ids.device)


_DONE = object()


def stream_answer(model: Any, tokenizer: Any, prompt: str, gen: GenerationSettings, stop_strings: tuple[str, ...],
                  adapter: bool = True, should_stop: Callable[[], bool] | None = None) -> Iterator[Reply]:
    """Stream one answer (adapter on: tuned, off: base); the last Reply is Compare's cut answer with `done` set.

    Beam search cannot stream: with num_beams > 1 the whole answer comes at once, as Compare makes it.
    """
    if gen.num_beams > 1:
        with using(model, adapter=adapter):
            answer = generate_answers(model, tokenizer, [prompt], gen, stop_strings=stop_strings)[0]
        yield Reply(answer.text, done=True, ending="beam search")
        return
    rule = stop_rule(model, tokenizer, stop_strings)
    ids, context = prompt_ids(tokenizer, prompt), stop_context(prompt, rule)
    kwargs = generation_kwargs(gen, tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                               else tokenizer.eos_token_id)
    kwargs["eos_token_id"] = sorted(rule.eos_ids)
    tokens: queue.Queue = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            batch = torch.tensor([ids], dtype=torch.long, device=model.device)
            criteria = StoppingCriteriaList([_EndWhen(tokenizer, rule, context, len(ids), stop)])
            with using(model, adapter=adapter), torch.random.fork_rng(devices=[]), torch.inference_mode(), \
                    eval_mode(model):
                torch.manual_seed(gen.seed)  # base and tuned sample from the same seed
                model.generate(input_ids=batch, attention_mask=torch.ones_like(batch), **kwargs,
                               streamer=_IdStreamer(tokens), stopping_criteria=criteria)
        except Exception as exc:  # noqa: BLE001 - handed to the reader, which raises it in its own thread
            tokens.put(exc)
        finally:
            tokens.put(_DONE)

    worker = threading.Thread(target=work, name="chat-generate", daemon=True)
    worker.start()
    new: list[int] = []
    try:
        while (item := tokens.get()) is not _DONE:
            if isinstance(item, Exception):
                raise item
            new.extend(item)
            if should_stop is not None and should_stop():
                stop.set()
            yield Reply(visible_text(tokenizer, new, rule, context))
        stopped = stop.is_set()
        text = visible_text(tokenizer, new, rule, context) if stopped else cut_answer(tokenizer, new, rule, context).text
        yield Reply(text, done=True, ending=_ending(tokenizer, new, rule, context, stopped, gen.max_new_tokens))
    finally:
        stop.set()  # a reader that goes away (closed stream) ends the generation at the next token


def _both(model: Any, tokenizer: Any, prompts: dict[str, tuple[str, int]], gen: GenerationSettings,
          stops: tuple[str, ...], should_stop: Callable[[], bool] | None) -> Iterator[tuple[str, Reply]]:
    for who, adapter in (("base", False), ("tuned", True)):
        prompt, dropped = prompts[who]
        if should_stop is not None and should_stop():  # stopped during the base answer: the tuned one never starts
            yield who, Reply("", done=True, ending="stopped")
            continue
        for reply in stream_answer(model, tokenizer, prompt, gen, stops, adapter, should_stop):
            yield who, replace(reply, dropped=dropped)


def converse(model: Any, tokenizer: Any, template: Any, turns: dict[str, Turns], message: str,
             gen: GenerationSettings, system: str = "",
             should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[str, Reply]]:
    """Both models answer `message` after their own earlier turns, base first: ("base" | "tuned", reply) as it grows."""
    prompts = {who: chat_prompt(template, tokenizer, turns.get(who, []), message, system)
               for who in ("base", "tuned")}
    yield from _both(model, tokenizer, prompts, gen, tuple(template.stop_strings), should_stop)


def ask_both(model: Any, tokenizer: Any, template: Any, instruction: str, input: str, gen: GenerationSettings,
             should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[str, Reply]]:
    """One free instruction (with an optional input) answered by base then tuned, streamed as Compare cuts it."""
    if not instruction.strip():
        raise DataError("Type an instruction for both models to answer.")
    prompt = template.prompt(Example(instruction=instruction, output="", input=input))
    yield from _both(model, tokenizer, {"base": (prompt, 0), "tuned": (prompt, 0)}, gen,
                     tuple(template.stop_strings), should_stop)
