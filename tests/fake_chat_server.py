"""A local HTTP server that speaks Groq's chat-completions API, for testing ChatGroq.

Each request is answered by a scripted ``respond(request_body, index)`` returning
(status, headers, body); every request's arrival time is recorded.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

from temporalio.client import WorkflowHandle

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
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def concepts_reply(*names: str) -> Reply:
    body = {"concepts": [{"name": n, "kind": "topic", "salience": 0.9 - i * 0.1} for i, n in enumerate(names)]}
    return 200, {}, completion(json.dumps(body))


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return status, headers or {}, {"error": {"message": message, "type": "test_error", "code": str(status)}}


class FakeChatServer:
    """The server's address and what it has seen."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.requests: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.base_url = ""

    def prompt_of(self, index: int) -> str:
        return self.requests[index][1]["messages"][-1]["content"]


@contextmanager
def fake_chat_server(respond: Responder) -> Iterator[FakeChatServer]:
    state = FakeChatServer(respond)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            with state._lock:
                index = len(state.requests)
                state.requests.append((time.monotonic(), body))
            status, headers, reply = state.respond(body, index)
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
