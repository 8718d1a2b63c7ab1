"""Metrics of the query family derived from Temporal histories (``GET /api/workflow/metrics``).

The seed's KPIs (success rate by step, time per agent, retry attempt distribution) come
from the recorded histories of recent runs (activities and local activities alike), not from counters
kept on the side; live counters of the same things (``sagaworks_query_agent_*``,
``sagaworks_breaker_transitions``) are on the workers' Prometheus endpoint, and breaker
activations are in :func:`activities.breakers.breaker_statuses` (``trips``).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from typing import Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from client.runs import status_name

STEP_OF_ACTIVITY = {
    "query_check_agents": "health",
    "query_plan": "nlp",
    "query_plan_offline": "nlp-fallback",
    "query_run": "data",
    "query_render": "viz",
}


class StepMetrics(BaseModel):
    step: str
    calls: int
    """Activity executions (each may take several attempts)."""
    succeeded: int
    success_rate: float
    attempts: dict[str, int]
    """How many executions ended on attempt 1, 2, ..."""
    p50_ms: float | None
    p95_ms: float | None


class QueryMetrics(BaseModel):
    runs: int
    by_status: dict[str, int]
    steps: list[StepMetrics]


def _local_activity(event: Any) -> tuple[str, int, bool, float | None] | None:
    """(step, attempt, failed, elapsed ms) of a local activity's marker, if it is one of ours.

    The SDK records a local activity as a ``core_local_activity`` marker whose ``data``
    detail is JSON (activity type, attempt, schedule and completion times).
    """
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != "core_local_activity" or "data" not in attrs.details:
        return None
    data = json.loads(attrs.details["data"].payloads[0].data)
    step = STEP_OF_ACTIVITY.get(data.get("activity_type", ""))
    if step is None:
        return None

    def seconds(stamp: dict[str, int] | None) -> float | None:
        return stamp["seconds"] + stamp.get("nanos", 0) / 1e9 if stamp else None

    completed, scheduled = seconds(data.get("complete_time")), seconds(data.get("original_schedule_time"))
    elapsed = (completed - scheduled) * 1000 if completed and scheduled and completed >= scheduled else None
    return step, int(data.get("attempt", 1)), attrs.HasField("failure"), elapsed


async def query_metrics(client: Client, *, limit: int = 200) -> QueryMetrics:
    """Metrics over the latest ``limit`` QueryWorkflow runs."""
    by_status: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()
    attempts: dict[str, Counter[str]] = defaultdict(Counter)
    durations: dict[str, list[float]] = defaultdict(list)
    runs = 0
    async for execution in client.list_workflows("WorkflowType = 'QueryWorkflow'", limit=limit):
        runs += 1
        by_status[status_name(execution.status)] += 1
        scheduled: dict[int, str] = {}
        started: dict[int, Any] = {}
        async for event in client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                local = _local_activity(event)
                if local is not None:
                    step, attempt, failed, elapsed_ms = local
                    calls[step] += 1
                    succeeded[step] += not failed
                    attempts[step][str(attempt)] += 1
                    if elapsed_ms is not None:
                        durations[step].append(elapsed_ms)
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                step = STEP_OF_ACTIVITY.get(event.activity_task_scheduled_event_attributes.activity_type.name)
                if step:
                    scheduled[event.event_id] = step
                    calls[step] += 1
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started[event.activity_task_started_event_attributes.scheduled_event_id] = event
            elif event.event_type in (
                EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            ):
                attrs = (
                    event.activity_task_completed_event_attributes
                    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                    else event.activity_task_failed_event_attributes
                    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                    else event.activity_task_timed_out_event_attributes
                )
                step = scheduled.get(attrs.scheduled_event_id)
                start = started.get(attrs.scheduled_event_id)
                if step is None or start is None:
                    continue
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    succeeded[step] += 1
                attempts[step][str(start.activity_task_started_event_attributes.attempt)] += 1
                elapsed = event.event_time.ToDatetime() - start.event_time.ToDatetime()
                durations[step].append(elapsed.total_seconds() * 1000)

    def quantile(values: list[float], q: int) -> float | None:
        if not values:
            return None
        if len(values) == 1:
            return round(values[0], 2)
        return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)

    steps = [
        StepMetrics(
            step=step,
            calls=calls[step],
            succeeded=succeeded[step],
            success_rate=round(succeeded[step] / calls[step], 4) if calls[step] else 0.0,
            attempts=dict(sorted(attempts[step].items())),
            p50_ms=quantile(durations[step], 50),
            p95_ms=quantile(durations[step], 95),
        )
        for step in STEP_OF_ACTIVITY.values()
        if calls[step]
    ]
    return QueryMetrics(runs=runs, by_status=dict(by_status), steps=steps)
