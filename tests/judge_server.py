"""A small, real OpenAI-compatible HTTP server on 127.0.0.1 for judge tests (stdlib http.server in a thread).

It answers POST /v1/chat/completions deterministically: it reads the judge prompt, prefers the answer that matches
the reference (exactly, else by more shared words), says tie when neither is closer, and words its verdict in the
ways real judges do ("A", "**B**", "Verdict: [[A]]", "Answer B is better."), one after another. Every request's
path, headers and body are kept for the test to check.
"""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STYLES = ("{v}", "**{v}**", "Verdict: [[{v}]]", "Answer {v} is better.")
_SECTION = re.compile(r"### (Reference answer|Answer A|Answer B):\n(.*?)(?=\n\n### |\n\nReply with|\Z)", re.S)


def closeness(answer: str, reference: str) -> tuple[bool, int]:
    """(exactly the reference, words shared with it)."""
    return answer.strip() == reference.strip(), len(set(answer.lower().split()) & set(reference.lower().split()))


def verdict_for(prompt: str) -> str:
    """'A', 'B' or 'tie': the answer closer to the reference."""
    parts = dict(_SECTION.findall(prompt))
    a, b = (closeness(parts[k], parts["Reference answer"]) for k in ("Answer A", "Answer B"))
    return "A" if a > b else "B" if b > a else "tie"


class JudgeServer:
    """Start with `with JudgeServer() as server:`; `server.url` is its base URL, `server.requests` what it got."""

    def __init__(self, reply: Any = None, status: int = 200) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply, self.status = reply, status  # reply(prompt, n) -> text replaces the verdict when given
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path != "/v1/chat/completions" or owner.status != 200:
                    self.send_response(404 if owner.status == 200 else owner.status)
                    self.end_headers()
                    return
                prompt, n = body["messages"][-1]["content"], len(owner.requests)
                text = owner.reply(prompt, n) if owner.reply else \
                    STYLES[n % len(STYLES)].format(v=verdict_for(prompt)).replace("[[tie]]", "[[C]]")
                data = json.dumps({"object": "chat.completion", "model": body.get("model", "tiny"),
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": text}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> JudgeServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (a port bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
