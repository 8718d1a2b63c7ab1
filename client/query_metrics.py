"""Metrics of the query family derived from Temporal histories (``GET /api/workflow/metrics``).

The query family's KPIs (success rate by step, time per agent, retry attempt distribution) come
from the recorded histories of recent runs (activities and local activities alike), not from counters
kept on the side; live counters of the same things (``sagaworks_query_agent_*``,
``sagaworks_breaker_transitions``) are on the workers' Prometheus endpoint, and breaker
activations are in :func:`sagaworks.breaker_statuses` (``trips``).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

from pydantic import BaseModel
from temporalio.client import Client

from sagaworks.client.runs import status_name
from sagaworks.client.stats import activity_calls

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


async def query_metrics(client: Client, *, limit: int = 200) -> QueryMetrics:
    """Metrics over the latest ``limit`` QueryWorkflow runs.

    A step's time is that of :func:`client.stats.activity_calls`: from scheduling to close
    for an activity, the workflow task that ran it for a local one (the agents run locally).
    """
    by_status: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()
    attempts: dict[str, Counter[str]] = defaultdict(Counter)
    durations: dict[str, list[float]] = defaultdict(list)
    runs = 0
    async for execution in client.list_workflows("WorkflowType = 'QueryWorkflow'", limit=limit):
        runs += 1
        by_status[status_name(execution.status)] += 1
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        for call in activity_calls(history):
            step = STEP_OF_ACTIVITY.get(call.activity_type)
            if step is None:
                continue
            calls[step] += 1
            succeeded[step] += call.outcome == "completed"
            attempts[step][str(call.attempts)] += 1
            durations[step].append(call.seconds * 1000)

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
