"""Helpers for tests of the order saga."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle

from sagaworks.activities.db import Database
from sagaworks.activities.orders import LedgerEntry
from sagaworks.contracts.orders import OrderInput, OrderResult, order_workflow_id
from sagaworks.workflows.order import OrderFulfillmentSaga


def make_order(**overrides: Any) -> OrderInput:
    """A valid order with a fresh id; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "order_id": f"t-{uuid.uuid4().hex[:12]}",
        "customer_email": "ada@example.com",
        "items": [
            {"sku": "WIDGET-1", "quantity": 2, "unit_price_cents": 1999},
            {"sku": "GIZMO-3", "quantity": 1, "unit_price_cents": 500},
        ],
        "shipping_address": "12 Analytical Row, London",
        # Remote steps: these tests read each step's activity events (inputs, attempts) in
        # the history. The default, local steps, is tested with local_steps=None.
        "local_steps": False,
    }
    fields.update(overrides)
    return OrderInput.model_validate(fields)


async def start_order(
    client: Client, task_queue: str, order: OrderInput
) -> WorkflowHandle[OrderFulfillmentSaga, OrderResult]:
    return await client.start_workflow(
        OrderFulfillmentSaga.run, order, id=order_workflow_id(order.order_id), task_queue=task_queue
    )


async def wait_for_status(
    handle: WorkflowHandle[Any, Any], predicate: Any, timeout: float = 30.0, query: Any = OrderFulfillmentSaga.status
) -> Any:
    """Poll a status query (the order saga's by default) until ``predicate(status)`` holds."""

    async def poll() -> Any:
        while True:
            status = await handle.query(query)
            if predicate(status):
                return status
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


async def final_status(handle: WorkflowHandle[Any, Any]) -> str:
    description = await handle.describe()
    assert description.status is not None
    return description.status.name


def ledger(db: Database, order_id: str) -> dict[str, int]:
    """Payment ledger entries of an order by kind: ``{"CHARGE": n, "REFUND": m}``."""
    with db.transaction() as session:
        rows = session.execute(
            select(LedgerEntry.kind, func.count()).where(LedgerEntry.order_id == order_id).group_by(LedgerEntry.kind)
        )
        return {kind: count for kind, count in rows}


def activity_names(events: list[HistoryEvent]) -> dict[int, str]:
    """Scheduled event id -> activity type, for the activities of a history."""
    return {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }


async def reset_after(
    client: Client, workflow_id: str, step: str | None
) -> WorkflowHandle[OrderFulfillmentSaga, OrderResult]:
    """Reset the workflow's latest run to just after ``step`` completed, as an operator would
    (``temporal workflow reset --event-id``); ``None`` resets to the first workflow task.

    Returns a handle on the new run.
    """
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    events = list((await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).events)
    names = activity_names(events)
    start = 0
    if step is not None:
        start = next(
            i
            for i, e in enumerate(events)
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and names[e.activity_task_completed_event_attributes.scheduled_event_id] == step
        )
    finish = next(e.event_id for e in events[start:] if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            reason=f"test: reset after {step or 'the first workflow task'}",
            workflow_task_finish_event_id=finish,
            request_id=str(uuid.uuid4()),
        )
    )
    return client.get_workflow_handle_for(OrderFulfillmentSaga.run, workflow_id, run_id=response.run_id)


async def wait_until_held(handle: WorkflowHandle[Any, Any], timeout: float = 30.0) -> None:
    """Wait until the run waits on nothing but its own state (a pause): every activity and
    timer it started has resolved and its last workflow task completed without new commands.

    Such a run takes no further step until a new event (a signal) arrives, so no sleep is
    needed to see that it holds.
    """
    resolved = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    }

    async def poll() -> None:
        while True:
            events = list((await handle.fetch_history()).events)
            activities = sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in events)
            timers = sum(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in events)
            if (
                events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                and activities == sum(e.event_type in resolved for e in events)
                and timers == sum(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in events)
            ):
                return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), timeout)
