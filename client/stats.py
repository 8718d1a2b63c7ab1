"""Step statistics per activity type, derived from Temporal histories.

For the closed and running workflows that visibility lists (a family, or any query), each
history is fetched and every activity execution (one ``ActivityTaskScheduled`` event and
its closing event) is measured: outcome, duration from scheduling to its close (queueing
and retries included), attempts, and the sizes of its input and result payloads. Nothing
is kept in memory between calls: the histories are the record. Shared by ``saga stats``
and the API's ``GET /api/metrics``.

A local activity (the order steps by default) leaves one marker in the history: its type,
attempts, outcome and result, but no input and no timing of its own; its duration is that
of the workflow task that ran it (an upper bound: a task may run several of them).
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory

from sagaworks import Family
from sagaworks.client.runs import visibility_query

CLOSING = {
    "activity_task_completed_event_attributes": "completed",
    "activity_task_failed_event_attributes": "failed",
    "activity_task_timed_out_event_attributes": "timed_out",
    "activity_task_canceled_event_attributes": "canceled",
}


@dataclass
class ActivityCall:
    """One activity execution as its history shows it."""

    activity_type: str
    outcome: str
    seconds: float
    attempts: int
    input_bytes: int
    output_bytes: int


def _payload_bytes(payloads: Any) -> int:
    return sum(len(p.data) for p in payloads.payloads) if payloads is not None else 0


def activity_calls(history: WorkflowHistory) -> list[ActivityCall]:
    """Every activity execution of a history that has closed, local ones included."""
    scheduled: dict[int, HistoryEvent] = {}
    attempts: dict[int, int] = {}
    calls = []
    task_seconds = 0.0  # of the latest workflow task, which ran the local activities that follow it
    task_started: HistoryEvent | None = None
    for event in history.events:
        if event.HasField("workflow_task_started_event_attributes"):
            task_started = event
            continue
        if event.HasField("workflow_task_completed_event_attributes") and task_started is not None:
            task_seconds = (event.event_time.ToDatetime() - task_started.event_time.ToDatetime()).total_seconds()
            continue
        if event.HasField("marker_recorded_event_attributes"):
            local = _local_activity_call(event, task_seconds)
            if local is not None:
                calls.append(local)
            continue
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = event
            continue
        if event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            attempts[started.scheduled_event_id] = started.attempt
            continue
        for name, outcome in CLOSING.items():
            if event.HasField(name):  # type: ignore[arg-type]  # CLOSING's keys are HistoryEvent fields
                closed = getattr(event, name)
                origin = scheduled.get(closed.scheduled_event_id)
                if origin is None:
                    break
                attributes = origin.activity_task_scheduled_event_attributes
                calls.append(
                    ActivityCall(
                        activity_type=attributes.activity_type.name,
                        outcome=outcome,
                        seconds=(event.event_time.ToDatetime() - origin.event_time.ToDatetime()).total_seconds(),
                        attempts=attempts.get(closed.scheduled_event_id, 1),
                        input_bytes=_payload_bytes(attributes.input),
                        output_bytes=_payload_bytes(closed.result) if outcome == "completed" else 0,
                    )
                )
                break
    return calls


def local_activity_marker(event: HistoryEvent) -> Payload | None:
    """The ``data`` detail of a local activity's marker (JSON: activity type, attempt...),
    or None when the event is not one. The SDK records each local activity this way."""
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != "core_local_activity" or "data" not in marker.details:
        return None
    return marker.details["data"].payloads[0]


def _local_activity_call(event: HistoryEvent, seconds: float) -> ActivityCall | None:
    payload = local_activity_marker(event)
    if payload is None:
        return None
    try:
        data = json.loads(payload.data)
    except ValueError:  # encoded by a codec: the type is not readable without it
        return None
    marker = event.marker_recorded_event_attributes
    failed = marker.HasField("failure")
    return ActivityCall(
        activity_type=data.get("activity_type", "local activity"),
        outcome="failed" if failed else "completed",
        seconds=seconds,
        attempts=data.get("attempt") or 1,
        input_bytes=0,
        output_bytes=0 if failed or "result" not in marker.details else _payload_bytes(marker.details["result"]),
    )


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class ActivityStats(BaseModel):
    """Figures of one activity type (``saga stats``, ``GET /api/metrics``)."""

    activity_type: str
    count: int
    succeeded: int
    success_rate: float
    min_seconds: float
    avg_seconds: float
    p95_seconds: float
    max_seconds: float
    retries: int
    """Attempts beyond the first, summed."""
    avg_input_bytes: float
    avg_output_bytes: float
    outcomes: dict[str, int] = {}


def summarise(calls: list[ActivityCall]) -> list[ActivityStats]:
    """Per activity type, sorted by name."""
    by_type: dict[str, list[ActivityCall]] = {}
    for call in calls:
        by_type.setdefault(call.activity_type, []).append(call)
    stats = []
    for name in sorted(by_type):
        group = by_type[name]
        seconds = [c.seconds for c in group]
        succeeded = sum(c.outcome == "completed" for c in group)
        outcomes: dict[str, int] = {}
        for c in group:
            outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
        stats.append(
            ActivityStats(
                activity_type=name,
                count=len(group),
                succeeded=succeeded,
                success_rate=round(succeeded / len(group), 4),
                min_seconds=round(min(seconds), 4),
                avg_seconds=round(sum(seconds) / len(seconds), 4),
                p95_seconds=round(_p95(seconds), 4),
                max_seconds=round(max(seconds), 4),
                retries=sum(c.attempts - 1 for c in group),
                avg_input_bytes=round(sum(c.input_bytes for c in group) / len(group), 1),
                avg_output_bytes=round(sum(c.output_bytes for c in group) / len(group), 1),
                outcomes=outcomes,
            )
        )
    return stats


async def activity_stats(
    client: Client, *, family: Family[Any] | None = None, query: str = "", limit: int = 200, concurrency: int = 8
) -> dict[str, Any]:
    """Statistics of the ``limit`` most recent runs that match; JSON-ready."""
    listed = []
    async for execution in client.list_workflows(visibility_query(family=family, query=query), limit=limit):
        listed.append((execution.id, execution.run_id))
    gate = asyncio.Semaphore(concurrency)

    async def calls_of(workflow_id: str, run_id: str | None) -> list[ActivityCall]:
        async with gate:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        return activity_calls(history)

    calls = [call for found in await asyncio.gather(*(calls_of(w, r) for w, r in listed)) for call in found]
    return {
        "workflows": len(listed),
        "family": family.name if family else None,
        "activities": [s.model_dump() for s in summarise(calls)],
    }
