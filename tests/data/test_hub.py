"""The Hub reachability probe answers fast and honours HF_HUB_OFFLINE."""
from __future__ import annotations

import socket

import pytest

from studio.data import hub
from studio.errors import HubUnavailableError


def test_offline_flag_means_unreachable_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("probe must not connect"))
    assert hub.hub_reachable() is False


def test_probe_failure_gives_the_one_sentence_at_once(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")

    def refuse(*args, **kwargs):
        raise OSError("no route")

    monkeypatch.setattr(socket, "create_connection", refuse)
    hub._probe.cache_clear()
    with pytest.raises(HubUnavailableError, match="cannot be reached from this machine"):
        hub.load_hub_rows("org/name", token="hf_secret")


def test_probe_success_is_cached(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example:8443")
    calls = []

    class Conn:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def connect(address, timeout):
        calls.append(address)
        return Conn()

    monkeypatch.setattr(socket, "create_connection", connect)
    hub._probe.cache_clear()
    assert hub.hub_reachable() and hub.hub_reachable()
    assert calls == [("hub.example", 8443)]
