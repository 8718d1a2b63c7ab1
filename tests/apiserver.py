"""The API served by uvicorn in a thread of its own, for tests that talk HTTP to it.

A thread (with its own event loop and Temporal client) rather than a task of the test's loop,
so synchronous tests (schemathesis, Playwright's waits) cannot starve it, and it stays the
real server: real sockets, real body limits, real streaming.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from sagaworks.client.api import ApiSettings, create_app
from tests.ports import free_port


@dataclass(frozen=True)
class RunningApi:
    url: str
    settings: ApiSettings


@contextlib.contextmanager
def api_server(settings: ApiSettings, client: Any = None) -> Iterator[RunningApi]:
    """Serve :func:`create_app` on a free loopback port until the block exits (with
    ``client`` as its Temporal client if given: pages that need none run without a server)."""
    port = free_port()
    app = create_app(settings, client=client)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    try:
        yield RunningApi(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(timeout=60)


async def read_events(http: Any, workflow_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (event name, data) of a run's ``/events`` stream, read to its end."""
    events: list[tuple[str, dict[str, Any]]] = []
    async with http.stream("GET", f"/api/workflows/{workflow_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name or "", json.loads(line.removeprefix("data: "))))
    return events
