"""Step timings derived from Temporal histories (never from files written on the side)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from temporalio.client import Client

from client.runs import visibility_query
from workflows.catalog import Family


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def step_timings(client: Client, family: Family[Any], *, runs: int = 20) -> tuple[dict[str, dict[str, float]], int]:
    """Per activity type: how long its successful executions took (scheduled to completed,
    retries and queueing included) over the family's ``runs`` latest closed runs."""
    durations: dict[str, list[float]] = defaultdict(list)
    sampled = 0
    query = visibility_query(family=family, query="ExecutionStatus != 'Running'")
    async for execution in client.list_workflows(query, limit=runs):
        sampled += 1
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        scheduled: dict[int, tuple[str, Any]] = {}
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                scheduled[event.event_id] = (name, event.event_time.ToDatetime())
            elif event.HasField("activity_task_completed_event_attributes"):
                name, at = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
                durations[name].append((event.event_time.ToDatetime() - at).total_seconds() * 1000)
    timings = {
        name: {
            "count": len(values),
            "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(_percentile(values, 0.95), 1),
            "max_ms": round(max(values), 1),
        }
        for name, values in sorted(durations.items())
    }
    return timings, sampled
