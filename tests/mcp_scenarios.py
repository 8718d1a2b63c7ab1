"""The MCP families' recorded scenarios (tests/record_histories.py saves their histories)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from sagaworks import registry
from sagaworks.workflows.support_ticket import SupportTicket


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
    # Read from the history, not the status query: an Update right after a query can be
    # recorded in an order no replay reproduces (support_assigned_during_lookups).
    await _history_shows(handle, _looked_up)
    await handle.execute_update(SupportTicket.assign, AssignRequest(agent="dana"))
    await handle.signal(SupportTicket.comment, Comment(author="dana", text="refund issued"))
    await handle.execute_update(SupportTicket.resolve, ResolveRequest(resolution="refunded the duplicate charge"))
    await handle.execute_update(SupportTicket.reopen, ReopenRequest(reason="the refund has not arrived"))
    await handle.execute_update(SupportTicket.resolve, ResolveRequest(resolution="refund confirmed by the bank"))
    await handle.terminate("recorded")
    return handle


async def support_assigned_during_lookups(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    """A ticket's ``assign`` delivered in the workflow task that brings its first lookup's
    result (the shape of the chaos run that no replay reproduces, without the status query
    that raced it there); then resolved, and terminated once the reopen window's timer
    started (after the lookups).

    The workers are this scenario's own, on a queue of its own, so the workflow worker can
    stop while the lookup runs: ``list-tools`` completes with no workflow worker polling,
    ``assign`` is admitted to the workflow task that completion scheduled, then a workflow
    worker polls again."""
    from sagaworks.activities.mcp_servers import mcp_plugins
    from sagaworks.activities.support_ticket import TicketClassifier, notify_escalation
    from sagaworks.contracts.support import AssignRequest, ResolveRequest
    from sagaworks.policies import llm_task_queue
    from sagaworks.worker import workflow_runner

    queue = f"{task_queue}-ticket"
    threads = ThreadPoolExecutor(max_workers=4)

    def workflows() -> Worker:
        return Worker(client, task_queue=queue, workflows=[SupportTicket], workflow_runner=workflow_runner())

    def lookups() -> Worker:
        return Worker(
            client, task_queue=queue, activities=[notify_escalation], activity_executor=threads, plugins=mcp_plugins()
        )

    classifier = Worker(
        client,
        task_queue=llm_task_queue(queue),
        activities=[TicketClassifier().classify_ticket],
        activity_executor=threads,
    )
    async with classifier:
        async with workflows():  # classified, then the lookups start: list-tools waits for a poller
            handle = await _start(client, queue, "support-ticket", "tickets/ticket-billing.json")
            await _history_shows(
                handle,
                lambda events: any(
                    e.activity_task_scheduled_event_attributes.activity_type.name.endswith("list-tools") for e in events
                ),
            )
        async with lookups():
            # Two completions: the classification's, then list-tools' (no workflow worker polls).
            await _history_shows(
                handle,
                lambda events: len([e for e in events if e.HasField("activity_task_completed_event_attributes")]) == 2,
            )
            assign = asyncio.create_task(handle.execute_update(SupportTicket.assign, AssignRequest(agent="dana")))
            # The server cannot tell a client when an Update is admitted (only accepted, which
            # needs a worker): a second is ample for it to join the scheduled workflow task,
            # and the recorded history says whether it did (tests/test_replay.py checks).
            await asyncio.sleep(1)
            async with workflows():
                await assign
                await handle.execute_update(
                    SupportTicket.resolve, ResolveRequest(resolution="refunded the duplicate charge")
                )
                await _history_shows(
                    handle, lambda events: any(e.HasField("timer_started_event_attributes") for e in events)
                )
    await handle.terminate("recorded")
    threads.shutdown()
    return handle


def _looked_up(events: list[Any]) -> bool:
    """A ticket's first lookup (its customer's tier, a call-tool activity) closed, as it may: its view lists it."""
    calls = {
        e.event_id
        for e in events
        if e.activity_task_scheduled_event_attributes.activity_type.name.endswith("call-tool")
    }
    closed = (
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
    )
    return any(getattr(e, name).scheduled_event_id in calls for e in events for name in closed if e.HasField(name))


async def _history_shows(handle: WorkflowHandle[Any, Any], found: Callable[[list[Any]], bool]) -> None:
    """Wait until the run's history events satisfy ``found`` (the history, never a query)."""
    for _ in range(600):
        if found(list((await handle.fetch_history()).events)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id}: the awaited event never came")


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
    "support_assigned_during_lookups": support_assigned_during_lookups,
}
