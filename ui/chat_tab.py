"""Chat tab: talk to the base model (adapter disabled) and the tuned model side by side, streamed token by token.

Each model keeps its own conversation; prompts use the run's own template and answers end by Compare's stop rule
(`studio.evaluate.chat`). Generation runs under the model's fair lock, so a chat turn waits at most for the batch
a Compare or another visitor's turn is on, and stays usable while a training job runs in the background.
"""
from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.errors import RunError
from studio.evaluate.chat import CHAT_GENERATION, Turns, converse
from studio.evaluate.lengths import sized_to_references
from studio.settings import GenerationSettings, StudioSettings
from ui.compare_tab import run_dropdown
from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState, owner_of
from ui.stops import wire_stop
from ui.widgets import make_widget, settings_from_values

CHAT_FIELDS = ("do_sample", "temperature", "top_p", "max_new_tokens", "max_new_tokens_auto", "repetition_penalty",
               "repetition_penalty_auto")
STOPPED = " [stopped]"  # shown after an answer the visitor stopped (never fed back to the model)
NOTHING = "(nothing)"  # shown for an empty answer (fed back as the empty answer it was)
EXPLAIN = ("Talk to both models at once: the **base** model (the adapter disabled: the true base weights) on the left, "
           "the **tuned** model on the right, each following its own side of the conversation. Prompts use the run's "
           "own template and answers end where Compare cuts them.")


@dataclass
class ChatTab:
    """The Chat tab's components that handlers read or write."""

    run: Any
    refresh: Any
    system: Any
    base: Any
    tuned: Any
    message: Any
    send: Any
    stop: Any
    clear: Any
    status: Any
    settings: dict[str, Any]


def create_chat_tab(ctx: Context) -> ChatTab:
    """Lay out the Chat tab (its generation widgets are its own, not Compare's)."""
    gr.Markdown(EXPLAIN)
    with gr.Row():
        run = gr.Dropdown([], label="Run (with a trained adapter)", scale=5, allow_custom_value=True)
        refresh = gr.Button("↻ Refresh runs", size="sm", scale=1)
    system = gr.Textbox("", label="System prompt (optional)", lines=1,
                        placeholder="e.g. You answer in one short sentence.")
    with gr.Row(equal_height=True):
        # Plain text, not Markdown: what the model wrote, exactly ("###", "*" and "~" included).
        base = gr.Chatbot(label="Base", height=440, elem_id="chat-base", render_markdown=False)
        tuned = gr.Chatbot(label="Tuned", height=440, elem_id="chat-tuned", render_markdown=False)
    with gr.Row(equal_height=True):
        message = gr.Textbox("", label="Message", placeholder="Type a message and press Enter", scale=6, lines=1)
        send = gr.Button("Send", variant="primary", scale=1)
        stop = gr.Button("Stop", variant="stop", scale=1)
        clear = gr.Button("Clear both", scale=1)
    status = gr.Markdown(elem_id="chat-status")
    with gr.Accordion("Chat generation settings", open=False), gr.Row():
        settings = {f"chat_{name}": make_widget("generation", name, value=getattr(CHAT_GENERATION, name))
                    for name in CHAT_FIELDS}
    return ChatTab(run, refresh, system, base, tuned, message, send, stop, clear, status, settings)


def message_text(content: Any) -> str:
    """A Chatbot message's text, whether Gradio hands it over as a string or as a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, list):
        return "".join(message_text(part) for part in content)
    return ""


def turns_of(messages: list[dict] | None) -> Turns:
    """The finished (user, answer) exchanges of one side of the chat, oldest first."""
    out, user = [], None
    for m in messages or []:
        text = message_text(m.get("content"))
        if m.get("role") == "user":
            user = text
        elif m.get("role") == "assistant" and user is not None:
            answer = text.strip().removesuffix(STOPPED.strip()).strip()
            out.append((user, "" if answer == NOTHING else answer))
            user = None
    return out


def chat_settings(values: dict[str, Any]) -> GenerationSettings:
    """The chat widgets' values as GenerationSettings (the chat's own defaults underneath)."""
    fields = {f"chat_{name}": ("generation", name) for name in CHAT_FIELDS}
    return settings_from_values(values, fields, StudioSettings(generation=CHAT_GENERATION)).generation


def _state_of(who: str, endings: dict[str, str]) -> str:
    if who in endings:
        return html.escape(endings[who])  # "<eos>" would vanish as an unknown HTML tag
    return "answering…" if who == "base" or "base" in endings else "waiting for the base answer…"


def _status(rm: Any, endings: dict[str, str], dropped: int, gen: GenerationSettings, length: str = "") -> str:
    """Which weights answered and how each answer ended, with how the answers were generated and how long."""
    how = (f"sampled at temperature {gen.temperature:g}, top-p {gen.top_p:g}, seed {gen.seed}" if gen.do_sample
           else "greedy")
    how += f"; {length.rstrip('.')}" if length else ""
    parts = [f"**{label}**: {_state_of(who, endings)}"
             for who, label in (("base", rm.base_label), ("tuned", rm.tuned_label))]
    note = f" The oldest {dropped} exchange(s) were left out of the prompt to keep it short." if dropped else ""
    if not rm.template.multi_turn:
        note += " This template is single-turn: earlier turns reach the model as a User/Assistant transcript."
    return " · ".join(parts) + f"  \n*Template {rm.template.name}, {how}.{note}*"


class ChatHandlers:
    """The Chat tab's handlers: both models answer through `studio.evaluate.chat`, streamed as {component: value}."""

    def __init__(self, ctx: Context, tab: ChatTab) -> None:
        self.tab, self.services = tab, ctx.services

    @guarded
    def refresh(self, state: SessionState, current: str | None = None) -> Any:
        """Runs with adapters; the one chosen stays chosen, else the visitor's latest."""
        return run_dropdown(self.services.runs_root, current or state.run_id)

    @guarded
    def chat(self, state: SessionState, run_id: str | None = None, message: str = "", system: str = "",
             base_chat: list | None = None, tuned_chat: list | None = None, token: str | None = None,
             request: gr.Request = None, **values: Any) -> Iterator[dict]:
        """Both models answer the message after their own earlier turns, base first, streamed as they write."""
        run_id, tab = run_id or state.run_id, self.tab
        if not run_id:
            raise RunError("Choose a run with a trained adapter first (train one on the Train tab).")
        rm = self.services.run_model(run_id, self.services.jobs.get(owner_of(state, request)), token or None)
        gen, length = sized_to_references(chat_settings(values), rm.reference_lengths())
        stop = self.services.stops.start(owner_of(state, request), "chat")
        turns = {"base": turns_of(base_chat), "tuned": turns_of(tuned_chat)}
        sides = {"base": list(base_chat or []), "tuned": list(tuned_chat or [])}
        for side in sides.values():
            side += [{"role": "user", "content": message.strip()}, {"role": "assistant", "content": "…"}]
        endings: dict[str, str] = {}
        dropped = 0
        # The box is emptied once, as the message is taken: a next message typed while this one is answered stays.
        yield {tab.message: ""}
        for who, reply in converse(rm.model, rm.tokenizer, rm.template, turns, message, gen, system, stop.is_set):
            text = reply.text + (STOPPED if reply.ending == "stopped" else "" if reply.done else " ▌")
            sides[who][-1] = {"role": "assistant", "content": text.strip() or NOTHING}
            dropped = max(dropped, reply.dropped)
            if reply.done:
                endings[who] = reply.ending
            yield {tab.base: gr.update(value=sides["base"], label=rm.base_label),
                   tab.tuned: gr.update(value=sides["tuned"], label=rm.tuned_label),
                   tab.status: _status(rm, endings, dropped, gen, length)}

    @guarded
    def clear(self, state: SessionState, request: gr.Request) -> dict:
        """Stop any answer in progress and start both conversations afresh."""
        self.services.stops.stop(owner_of(state, request), "chat")
        return {self.tab.base: [], self.tab.tuned: [], self.tab.status: ""}


def wire_chat_tab(ctx: Context, tab: ChatTab) -> None:
    """Connect send (streamed), stop, clear and the run picker."""
    state, on = ctx.state, ChatHandlers(ctx, tab)
    refresh = on.refresh  # bound once: Gradio groups events under one concurrency limit by their function's id
    inputs = [state, tab.run, tab.message, tab.system, tab.base, tab.tuned, ctx.token]
    outputs = [tab.message, tab.base, tab.tuned, tab.status]
    # Its own queue: each turn holds the model only while one answer is written (the model's fair lock), so chat
    # interleaves with Compare's batches and another visitor's turns instead of waiting for all of them.
    gr.on([tab.send.click, tab.message.submit], on.chat, inputs, outputs, inputs_kwargs=tab.settings,
          api_name="chat", concurrency_id="chat", concurrency_limit=2, show_progress="hidden")
    wire_stop(ctx, tab.stop, "chat", "the answer", "stop_chat")
    tab.clear.click(on.clear, state, [tab.base, tab.tuned, tab.status], api_name="clear_chat", concurrency_limit=None)
    tab.refresh.click(refresh, [state, tab.run], tab.run, api_name="list_chat_runs")
    if "chat" in ctx.tab_blocks:
        ctx.tab_blocks["chat"].select(refresh, [state, tab.run], tab.run, api_visibility="private")
