"""Server-Sent Events that follow one run to its end."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.encoders import jsonable_encoder
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from sagaworks.client.runs import describe_run, run_outcome

KEEPALIVE_SECONDS = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""

# What a run's status query answers changes only when a workflow task completes (its code
# ran), and its status when it closes: the events after which the run is described again.
_CHANGES = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


def sse(event: str, data: Any) -> str:
    """One Server-Sent Event; the data is a single JSON line."""
    return f"event: {event}\ndata: {json.dumps(jsonable_encoder(data), separators=(',', ':'))}\n\n"


async def _watch_history(client: Client, workflow_id: str, changed: asyncio.Event) -> None:
    """Set ``changed`` after each event that may change what the run reports.

    A long poll on the history (the server answers when a new event is written), so a
    quiet run costs no requests; a run that continues as new is followed into the next."""
    while True:
        last = None
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events(wait_new_event=True):
            last = event.event_type
            if last in _CHANGES:
                changed.set()
        if last != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return


async def run_events(client: Client, workflow_id: str) -> AsyncIterator[str]:
    """``status`` whenever status or progress changes, then ``result`` once the run closes.

    The run is described once at the start and again only after a history event that may
    have changed it (see :func:`_watch_history`); the result is awaited the same way.
    """
    handle = client.get_workflow_handle(workflow_id)
    outcome = asyncio.ensure_future(run_outcome(handle))
    changed = asyncio.Event()
    watcher = asyncio.ensure_future(_watch_history(client, workflow_id, changed))
    last: str | None = None
    try:
        while True:
            changed.clear()
            snapshot = jsonable_encoder(await describe_run(client, workflow_id))
            key = json.dumps([snapshot["status"], snapshot["progress"]], sort_keys=True)
            if key != last:
                last = key
                yield sse("status", snapshot)
            if outcome.done():
                break
            # Until the history changes or the run ends; a comment line now and then.
            while not (changed.is_set() or outcome.done()):
                waiting = asyncio.ensure_future(changed.wait())
                try:
                    done, _ = await asyncio.wait(
                        {waiting, outcome}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    waiting.cancel()
                if not done:
                    yield ": keepalive\n\n"
        yield sse("result", outcome.result().as_json())
    finally:
        for task in (outcome, watcher):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
