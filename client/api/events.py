"""Server-Sent Events that follow one run to its end."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.encoders import jsonable_encoder
from temporalio.client import Client

from client.runs import describe_run, run_outcome

POLL_SECONDS = 0.5
"""How often the status query is asked while waiting for the result."""
KEEPALIVE_SECONDS = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""


def sse(event: str, data: Any) -> str:
    """One Server-Sent Event; the data is a single JSON line."""
    return f"event: {event}\ndata: {json.dumps(jsonable_encoder(data), separators=(',', ':'))}\n\n"


async def run_events(client: Client, workflow_id: str) -> AsyncIterator[str]:
    """``status`` whenever status or progress changes, then ``result`` once the run closes.

    The result is awaited (a long poll on the history), so the stream ends as soon as the
    run does; the status query is asked between waits.
    """
    handle = client.get_workflow_handle(workflow_id)
    outcome = asyncio.ensure_future(run_outcome(handle))
    last: str | None = None
    quiet = 0.0
    try:
        while True:
            snapshot = jsonable_encoder(await describe_run(client, workflow_id))
            key = json.dumps([snapshot["status"], snapshot["progress"]], sort_keys=True)
            if key != last:
                last, quiet = key, 0.0
                yield sse("status", snapshot)
            if outcome.done():
                break
            done, _ = await asyncio.wait({outcome}, timeout=POLL_SECONDS)
            quiet += POLL_SECONDS
            if not done and quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keepalive\n\n"
        yield sse("result", outcome.result().as_json())
    finally:
        outcome.cancel()
        with contextlib.suppress(BaseException):
            await outcome
