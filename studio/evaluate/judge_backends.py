"""Who judges: a local or Hub chat model through transformers, any OpenAI-compatible endpoint by URL (llama.cpp's
llama-server, Ollama, vLLM, a hosted API), or Hugging Face Inference Providers with the visitor's token.

One setting picks the backend (`JudgeSpec.backend`). Keys and tokens are handed to the backend object and used in
the request only: they are never written to disk and never quoted in an error. Each backend answers greedily.
"""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from studio.errors import SettingsError
from studio.evaluate.judge_record import JudgeUnavailable
from studio.settings import ModelSettings

BACKENDS = ("transformers", "endpoint", "providers")


@dataclass
class JudgeSpec:
    """Which judge answers and how: the backend, the model, the endpoint URL, and the reply's token limit."""

    backend: str = "transformers"  # one of BACKENDS
    model: str = ""  # a Hub id or local folder (transformers), the server's model name (endpoint), a provider model
    endpoint: str = ""  # an OpenAI-compatible server's base URL, e.g. http://127.0.0.1:8080 (endpoint only)
    max_new_tokens: int = 32  # a verdict is one word; the margin lets a chatty judge say "Answer A is better."
    timeout_s: float = 120.0  # per request to an endpoint or provider

    def __post_init__(self) -> None:
        self.model, self.endpoint = self.model.strip(), self.endpoint.strip()
        if self.backend not in BACKENDS:
            raise SettingsError(f"The judge backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}.")
        if self.backend == "endpoint" and urlsplit(self.endpoint).scheme not in ("http", "https"):
            raise SettingsError("The judge endpoint must be an http:// or https:// URL, e.g. http://127.0.0.1:8080.")
        if self.backend != "endpoint" and not self.model:
            raise SettingsError("Name the judge model: a Hub id or a local folder of a chat model.")
        if self.max_new_tokens < 1:
            raise SettingsError("The judge needs at least one new token to answer.")


def shown_url(url: str) -> str:
    """The URL as messages show it: scheme, host, port and path, without credentials or a query."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def chat_url(endpoint: str) -> str:
    """The chat-completions URL of an endpoint given as its base, its /v1, or the full path."""
    url = endpoint.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return f"{url}/chat/completions" if url.endswith("/v1") else f"{url}/v1/chat/completions"


def _messages(prompt: str) -> list[dict[str, str]]:
    # One user turn: every chat template accepts it (some refuse a system turn).
    return [{"role": "user", "content": prompt}]


class TransformersJudge:
    """A causal LM with a chat template, loaded like a base model (the studio's loader, or an injected one)."""

    backend = "transformers"

    def __init__(self, spec: JudgeSpec, token: str | None = None, model_loader: Callable[..., Any] | None = None):
        if model_loader is None:
            from studio.model.loading import load_base_model as model_loader
        loaded = model_loader(ModelSettings(model=spec.model), token=token)  # a ModelError when it does not load
        self.model, self.tokenizer, self.name = loaded.model.eval(), loaded.tokenizer, spec.model
        if not getattr(self.tokenizer, "chat_template", None):
            raise JudgeUnavailable(f"The judge model {spec.model} has no chat template; choose an instruction-tuned "
                                   "(chat) model as the judge.")
        self.generation = {"do_sample": False, "max_new_tokens": spec.max_new_tokens}

    def ask(self, prompt: str) -> str:
        """Greedy reply to one prompt, rendered by the model's own chat template."""
        import torch

        try:
            text = self.tokenizer.apply_chat_template(_messages(prompt), tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # noqa: BLE001 - a template's own Jinja error, worded once
            raise JudgeUnavailable(f"The judge model {self.name}'s chat template failed: {exc}.") from None
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").to(self.model.device)
        with torch.inference_mode():
            out = self.model.generate(**ids, **self.generation, pad_token_id=self.tokenizer.pad_token_id)
        return self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


class EndpointJudge:
    """Any server speaking OpenAI's `/v1/chat/completions` (the key, if any, is sent as a Bearer header only)."""

    backend = "endpoint"

    def __init__(self, spec: JudgeSpec, api_key: str | None = None) -> None:
        self.url, self.model, self.timeout = chat_url(spec.endpoint), spec.model, spec.timeout_s
        self._key = api_key or None
        self.name = f"{spec.model or 'the served model'} at {shown_url(self.url)}"
        self.generation = {"temperature": 0.0, "max_tokens": spec.max_new_tokens}

    def ask(self, prompt: str) -> str:
        """POST one chat request and return the reply's content."""
        body = {"messages": _messages(prompt), **self.generation, "stream": False}
        if self.model:  # llama-server serves one model and needs no name; Ollama, vLLM and hosted APIs do
            body["model"] = self.model
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode("utf-8"), headers, method="POST")
        where = shown_url(self.url)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise JudgeUnavailable(_http_sentence(where, exc.code, "the API key")) from None
        except (OSError, ValueError, http.client.HTTPException):  # refused, unreachable, timed out, not JSON
            raise JudgeUnavailable(f"The judge endpoint at {where} cannot be reached or did not answer in JSON; "
                                   "check that the server is running and the URL is right.") from None
        try:
            return answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise JudgeUnavailable(f"The judge endpoint at {where} did not answer in the OpenAI chat format.") from None


def _http_sentence(where: str, code: int, credential: str) -> str:
    if code in (401, 403):
        return f"The judge at {where} refused the request (HTTP {code}); check {credential}."
    if code == 404:
        return f"The judge at {where} answered HTTP 404; check the URL and the model name."
    return f"The judge at {where} answered HTTP {code}; try again or choose another judge."


class ProvidersJudge:
    """Hugging Face Inference Providers through `huggingface_hub.InferenceClient` (OpenAI's chat protocol), with
    the signed-in visitor's token; needs the network, so it runs on a Space or a laptop, not offline."""

    backend = "providers"

    def __init__(self, spec: JudgeSpec, token: str | None = None) -> None:
        from huggingface_hub import InferenceClient

        self._client = InferenceClient(model=spec.model, token=token or None, timeout=spec.timeout_s)
        self.name = f"{spec.model} on Hugging Face Inference Providers"
        self.generation = {"temperature": 0.0, "max_tokens": spec.max_new_tokens}

    def ask(self, prompt: str) -> str:
        """One chat completion through the provider the Hub routes the model to."""
        from huggingface_hub import errors as hub_errors

        try:
            out = self._client.chat_completion(messages=_messages(prompt), **self.generation)
        except hub_errors.HfHubHTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            raise JudgeUnavailable(_http_sentence("Hugging Face Inference Providers", code, "your token")) from None
        except (OSError, ValueError):
            raise JudgeUnavailable("Hugging Face Inference Providers cannot be reached from this machine; use a "
                                   "local judge model or an endpoint instead.") from None
        return out.choices[0].message.content or ""


def make_judge(spec: JudgeSpec, api_key: str | None = None, model_loader: Callable[..., Any] | None = None) -> Any:
    """The judge `spec.backend` names; `api_key` is the endpoint's key or the Hugging Face token (never saved)."""
    if spec.backend == "endpoint":
        return EndpointJudge(spec, api_key)
    if spec.backend == "providers":
        return ProvidersJudge(spec, api_key)
    return TransformersJudge(spec, api_key, model_loader)
