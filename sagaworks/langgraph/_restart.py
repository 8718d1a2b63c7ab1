"""Restart a graph run from a node: LangGraph's time travel, durable.

The state before a node is the input of that node's first activity in the source run's
history, so nothing is stored on the side. The new run gets the source's input, starts at
the node with that state (edited by ``--set KEY=VALUE``) and names its source in its memo
and its ``status`` (``restarted_from``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from temporalio.client import Client, WorkflowHandle

from sagaworks.langgraph._models import RESTART_MEMO, GraphRestart, NodeInput

WORKFLOW_TYPE_PREFIX = "langgraph-"


async def restart_graph(
    client: Client,
    workflow_id: str,
    from_node: str,
    *,
    run_id: str | None = None,
    edits: Mapping[str, Any] | None = None,
    new_workflow_id: str | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start a new run of the graph run ``workflow_id`` from ``from_node``.

    Raises:
        ValueError: the run is not a graph run, or never reached ``from_node``.
    """
    source = client.get_workflow_handle(workflow_id, run_id=run_id)
    history = await source.fetch_history()
    start = history.events[0].workflow_execution_started_event_attributes
    workflow_type = start.workflow_type.name
    if not workflow_type.startswith(WORKFLOW_TYPE_PREFIX):
        raise ValueError(f"{workflow_id} is a {workflow_type} run, not a graph run")
    activity_type = f"{workflow_type.removeprefix(WORKFLOW_TYPE_PREFIX)}.{from_node}"
    scheduled = next(
        (
            e.activity_task_scheduled_event_attributes
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == activity_type
        ),
        None,
    )
    if scheduled is None:
        raise ValueError(f"{workflow_id} never reached node {from_node!r}: nothing to restart from")
    [before] = await client.data_converter.decode(scheduled.input.payloads, [NodeInput])
    [arg] = await client.data_converter.decode(start.input.payloads)
    state = {**before.state, **(edits or {})}
    first_run = history.events[0].workflow_execution_started_event_attributes.original_execution_run_id
    restart = GraphRestart(
        source=f"{workflow_id}/{run_id or first_run}",
        from_node=from_node,
        state=state,
        edited=sorted(edits or {}),
    )
    return await client.start_workflow(
        workflow_type,
        arg,
        id=new_workflow_id or f"{workflow_id}-from-{from_node}-{uuid.uuid4().hex[:6]}",
        task_queue=start.task_queue.name,
        memo={RESTART_MEMO: restart.model_dump(mode="json")},
    )
