"""The MCP families' recorded scenarios (tests/record_histories.py saves their histories)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle

from sagaworks import registry
from sagaworks.workflows.support import SupportTicket


async def _start(client: Client, task_queue: str, name: str, sample: str) -> WorkflowHandle[Any, Any]:
    fam = registry().family(name)
    request = fam.sample_input(sample, uuid.uuid4().hex[:8])
    return await client.start_workflow(
        fam.workflow, request, id=f"record-{fam.workflow_id(request)}", task_queue=task_queue
    )


async def aggregate_partial(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    """Three sources; Tokyo has no weather station, so weather is partial."""
    return await _start(client, task_queue, "aggregate", "inputs/aggregate.json")


async def _ticket_state(handle: WorkflowHandle[Any, Any], check: Callable[[Any], bool]) -> None:
    for _ in range(600):
        status = await handle.query(SupportTicket.status)
        if status.ticket is not None and check(status.ticket):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"ticket {handle.id} never got there: {status}")


async def support_resolved(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    """A billing ticket assigned, commented, resolved, reopened and resolved again; then
    terminated (it would wait 7 days for another reopen)."""
    from sagaworks.contracts.support import AssignRequest, Comment, ReopenRequest, ResolveRequest

    handle = await _start(client, task_queue, "support-ticket", "tickets/ticket-billing.json")
    await _ticket_state(handle, lambda ticket: ticket.lookups)
    await handle.execute_update(SupportTicket.assign, AssignRequest(agent="dana"))
    await handle.signal(SupportTicket.comment, Comment(author="dana", text="refund issued"))
    await handle.execute_update(SupportTicket.resolve, ResolveRequest(resolution="refunded the duplicate charge"))
    await handle.execute_update(SupportTicket.reopen, ReopenRequest(reason="the refund has not arrived"))
    await handle.execute_update(SupportTicket.resolve, ResolveRequest(resolution="refund confirmed by the bank"))
    await handle.terminate("recorded")
    return handle


async def support_escalated(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    """A ticket with trigger words, escalated at once; then terminated."""
    handle = await _start(client, task_queue, "support-ticket", "tickets/ticket-angry-outage.json")
    await _ticket_state(handle, lambda ticket: ticket.escalations)
    await handle.terminate("recorded")
    return handle


MCP_SCENARIOS: dict[str, Callable[[Client, str], Awaitable[WorkflowHandle[Any, Any]]]] = {
    "aggregate_partial": aggregate_partial,
    "support_resolved": support_resolved,
    "support_escalated": support_escalated,
}
