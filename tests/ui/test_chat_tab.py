"""The Chat tab's pure helpers: Chatbot messages -> earlier turns, widget values -> generation settings."""
from __future__ import annotations

from studio.evaluate.chat import CHAT_GENERATION
from ui.chat_tab import chat_settings, message_text, turns_of


def test_messages_in_either_shape_become_the_finished_exchanges():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}]},
        {"role": "user", "content": [{"type": "text", "text": "Story?"}]},
        {"role": "assistant", "content": "Once upon [stopped]"},
        {"role": "user", "content": "Again"},
        {"role": "assistant", "content": "(nothing)"},
        {"role": "user", "content": "unanswered"},
    ]
    assert turns_of(messages) == [("Hi", "Hello!"), ("Story?", "Once upon"), ("Again", "")]
    assert turns_of(None) == [] and message_text({"text": "x"}) == "x" and message_text(None) == ""


def test_chat_settings_start_from_the_chats_own_defaults():
    assert chat_settings({}) == CHAT_GENERATION and CHAT_GENERATION.do_sample
    tuned = chat_settings({"chat_temperature": 0.2, "chat_max_new_tokens": 9, "generation_temperature": 3.0})
    assert (tuned.temperature, tuned.max_new_tokens, tuned.top_p) == (0.2, 9, CHAT_GENERATION.top_p)
