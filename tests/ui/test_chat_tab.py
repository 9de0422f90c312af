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


def test_the_message_box_is_emptied_once_so_a_message_typed_meanwhile_stays(monkeypatch):
    import threading
    from types import SimpleNamespace

    from studio.evaluate.chat import Reply
    from ui import chat_tab
    from ui.state import SessionState

    replies = [("base", Reply("Hel")), ("base", Reply("Hello", True, "ended with <eos>")),
               ("tuned", Reply("Hi", True, "ended with <eos>"))]
    monkeypatch.setattr(chat_tab, "converse", lambda *args: iter(replies))
    model = SimpleNamespace(model=None, tokenizer=None, base_label="Base", tuned_label="Tuned",
                            template=SimpleNamespace(name="alpaca", multi_turn=False), reference_lengths=list)
    services = SimpleNamespace(run_model=lambda *args: model, jobs=SimpleNamespace(get=lambda owner: None),
                               stops=SimpleNamespace(start=lambda owner, kind: threading.Event()))
    tab = SimpleNamespace(message="message", base="base", tuned="tuned", status="status")
    handlers = chat_tab.ChatHandlers(SimpleNamespace(services=services), tab)
    updates = list(handlers.chat(SessionState(owner="visitor"), "run-1", "Hi there"))
    assert updates[0] == {"message": ""} and all("message" not in u for u in updates[1:])  # typed meanwhile: kept
    assert updates[-1]["tuned"]["value"][-1] == {"role": "assistant", "content": "Hi"}
    assert "**Tuned**: ended with &lt;eos&gt;" in updates[-1]["status"]
