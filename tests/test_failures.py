"""Failures of our own known errors carry no stack trace in history; bugs keep theirs."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from sagaworks.activities.db import Database
from sagaworks.worker import running_worker
from tests.orders import make_order, start_order


@activity.defn
async def divide_by_zero() -> float:
    return 1 / 0  # a bug, not a known error


@workflow.defn(sandboxed=False)
class BuggyWorkflow:
    @workflow.run
    async def run(self) -> float:
        return await workflow.execute_activity(
            divide_by_zero, start_to_close_timeout=timedelta(seconds=10), retry_policy=RetryPolicy(maximum_attempts=1)
        )


def _failures(history: Any) -> list[tuple[str, Any]]:
    found = []
    for event in history.events:
        for attributes in ("activity_task_failed_event_attributes", "workflow_execution_failed_event_attributes"):
            if event.HasField(attributes):
                found.append((attributes, getattr(event, attributes).failure))
    return found


async def test_known_errors_have_no_stack_trace(dev_client: Client, db: Database, task_queue: str) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        handle = await start_order(
            dev_client, task_queue, make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"})
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
    failures = _failures(await handle.fetch_history())
    kinds = {kind for kind, _ in failures}
    assert kinds == {"activity_task_failed_event_attributes", "workflow_execution_failed_event_attributes"}
    for _, failure in failures:
        assert failure.message and failure.application_failure_info.type
        assert failure.stack_trace == "", failure


async def test_a_bug_keeps_its_stack_trace(dev_client: Client, task_queue: str) -> None:
    async with Worker(dev_client, task_queue=task_queue, workflows=[BuggyWorkflow], activities=[divide_by_zero]):
        handle = await dev_client.start_workflow(BuggyWorkflow.run, id=f"bug-{task_queue}", task_queue=task_queue)
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
    [(_, failure)] = [f for f in _failures(await handle.fetch_history()) if f[0].startswith("activity")]
    assert failure.application_failure_info.type == "ZeroDivisionError"
    assert "divide_by_zero" in failure.stack_trace


async def test_a_known_error_from_the_process_pool_carries_no_remote_traceback(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    from sagaworks.contracts.sequential import SequentialInput
    from sagaworks.workflows.sequential import SequentialWorkflow

    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, cpu_processes=1):
        handle = await dev_client.start_workflow(
            SequentialWorkflow.run, SequentialInput(text="too short"), id=f"short-{task_queue}", task_queue=task_queue
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
    [(_, failure)] = [f for f in _failures(await handle.fetch_history()) if f[0].startswith("activity")]
    assert failure.application_failure_info.type == "InvalidInput" and not failure.stack_trace
    assert not failure.HasField("cause"), failure.cause  # was a _RemoteTraceback with the child's frames
