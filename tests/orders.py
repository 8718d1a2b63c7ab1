"""Helpers for tests of the order saga."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle

from workflows.order import OrderFulfillmentSaga
from contracts.orders import OrderInput, OrderResult, order_workflow_id


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
