"""The MCP families' recorded scenarios (tests/record_histories.py saves their histories)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle

from workflows.catalog import family


async def _start(client: Client, task_queue: str, name: str, sample: str) -> WorkflowHandle[Any, Any]:
    fam = family(name)
    request = fam.sample_input(sample, uuid.uuid4().hex[:8])
    return await client.start_workflow(
        fam.workflow, request, id=f"record-{fam.workflow_id(request)}", task_queue=task_queue
    )


async def aggregate_partial(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    """Three sources; Tokyo has no weather station, so weather is partial."""
    return await _start(client, task_queue, "aggregate", "inputs/aggregate.json")


MCP_SCENARIOS: dict[str, Callable[[Client, str], Awaitable[WorkflowHandle[Any, Any]]]] = {
    "aggregate_partial": aggregate_partial,
}
