"""A local HTTP server that speaks the chat-completions API (Groq's, any OpenAI-compatible
server's), for testing ChatGroq and the LLM gateway.

Each request is answered by a scripted ``respond(request_body, index)`` returning
(status, headers, body); every request's arrival time is recorded. With :class:`Limits`
the server also enforces its own requests and tokens per window, as providers do: a
request that would pass either is refused with 429 and a ``Retry-After`` saying when it
would fit, and what it accepted can be measured per window (:meth:`FakeChatServer.busiest_window`).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

from temporalio.client import WorkflowHandle

from sagaworks import LLMSettings
from tests.ports import serving

Reply = tuple[int, dict[str, str], dict[str, Any]]
Responder = Callable[[dict[str, Any], int], Reply]


def completion(content: str) -> dict[str, Any]:
    """A chat-completions response whose message is ``content``."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def concepts_reply(*names: str) -> Reply:
    body = {"concepts": [{"name": n, "kind": "topic", "salience": 0.9 - i * 0.1} for i, n in enumerate(names)]}
    return 200, {}, completion(json.dumps(body))


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return status, headers or {}, {"error": {"message": message, "type": "test_error", "code": str(status)}}


def echo(body: dict[str, Any], _index: int) -> Reply:
    """Answers "ok <the prompt's first word>"."""
    return 200, {}, completion("ok " + body["messages"][-1]["content"].split()[0])


def failing(status: int = 503, message: str = "overloaded") -> Responder:
    """A 5xx storm: every request refused with ``status``."""
    return lambda _body, _index: api_error(status, message)


def openai_settings(server: FakeChatServer) -> LLMSettings:
    """The gateway's OpenAI-compatible provider, pointed at ``server``."""
    return LLMSettings("openai", "test-model", f"{server.base_url}/v1", "test-key")


@dataclass(frozen=True)
class Limits:
    """The server's own budget: requests and tokens in any window of ``window_seconds``."""

    requests: int
    tokens: int
    window_seconds: float


def tokens_of(text: str) -> int:
    """How many tokens the server counts for ``text``: one per four characters."""
    return math.ceil(len(text) / 4)


class FakeChatServer:
    """The server's address and what it has seen."""

    def __init__(self, respond: Responder, limits: Limits | None = None) -> None:
        self.respond = respond
        self.limits = limits
        self.requests: list[tuple[float, dict[str, Any]]] = []
        self.accepted: list[tuple[float, int]] = []
        """Arrival time and tokens of every request answered within the limits."""
        self.refused: list[tuple[float, float]] = []
        """Arrival time and Retry-After of every request refused with 429 by the limits."""
        self._lock = threading.Lock()
        self.base_url = ""

    def prompt_of(self, index: int) -> str:
        return self.requests[index][1]["messages"][-1]["content"]

    def _admit(self, now: float, tokens: int) -> float | None:
        """Record an accepted request, or return the seconds until it would fit."""
        assert self.limits is not None
        window = self.limits.window_seconds
        live = sorted(entry for entry in self.accepted if entry[0] > now - window)
        count, spent = len(live), sum(t for _, t in live)

        def fits() -> bool:
            assert self.limits is not None
            return count + 1 <= self.limits.requests and spent + tokens <= self.limits.tokens

        if fits():
            self.accepted.append((now, tokens))
            return None
        for arrived, freed in live:  # oldest first: each leaves the window at arrived + window
            count, spent = count - 1, spent - freed
            if fits():
                return arrived + window - now
        return window

    def busiest_window(self) -> tuple[int, int]:
        """The most requests, and the most tokens, accepted in any window of the limits' length."""
        assert self.limits is not None
        window = self.limits.window_seconds
        most_requests = most_tokens = 0
        for start, _ in self.accepted:
            inside = [t for arrived, t in self.accepted if start <= arrived < start + window]
            most_requests, most_tokens = max(most_requests, len(inside)), max(most_tokens, sum(inside))
        return most_requests, most_tokens


@contextmanager
def fake_chat_server(respond: Responder, limits: Limits | None = None) -> Iterator[FakeChatServer]:
    state = FakeChatServer(respond, limits)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            with state._lock:
                index = len(state.requests)
                state.requests.append((time.monotonic(), body))
            status, headers, reply = state.respond(body, index)
            if state.limits is not None and status == 200:
                prompt = tokens_of("".join(m["content"] for m in body["messages"]))
                completion_tokens = tokens_of(reply["choices"][0]["message"]["content"])
                with state._lock:
                    wait = state._admit(time.monotonic(), prompt + completion_tokens)
                    if wait is not None:
                        state.refused.append((time.monotonic(), wait))
                if wait is None:
                    reply = {
                        **reply,
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt + completion_tokens,
                        },
                    }
                else:
                    status, headers, reply = api_error(429, "rate limit reached", {"retry-after": f"{wait:.3f}"})
            payload = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as state.base_url:
        yield state


async def retry_delay_of(handle: WorkflowHandle[Any, Any], activity_type: str) -> timedelta:
    """The delay the server scheduled before retrying ``activity_type`` (from its last failure),
    e.g. a 429's Retry-After."""
    for _ in range(1200):
        for pending in (await handle.describe()).raw_description.pending_activities:
            info = pending.last_failure.application_failure_info
            if pending.activity_type.name == activity_type and info.HasField("next_retry_delay"):
                return info.next_retry_delay.ToTimedelta()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{activity_type} never failed with a retry delay")


def model_for_family(monkeypatch: Any, family: str, base_url: str) -> None:
    """Configure the fake server's endpoint as ``family``'s model only (an OpenAI-compatible
    one, ``local-model``), with no Groq key, general provider or breaker setting left over."""
    for name in ("GROQ_API_KEY", "SAGAWORKS_LLM_PROVIDER", "SAGAWORKS_BREAKER_LLM"):
        monkeypatch.delenv(name, raising=False)
    key = family.upper().replace("-", "_")
    monkeypatch.setenv(f"SAGAWORKS_LLM_{key}_BASE_URL", f"{base_url}/v1")
    monkeypatch.setenv(f"SAGAWORKS_LLM_{key}_MODEL", "local-model")
