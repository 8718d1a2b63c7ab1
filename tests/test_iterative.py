"""The iterative family: BM25 rounds over stored chunks, a measured quality, the cap,
continue-as-new carrying the best round, and the failure paths."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from sagaworks.activities.db import Database
from sagaworks.activities.search import quality_of
from sagaworks.contracts.iterative import IterativeInput
from sagaworks.worker import running_worker
from sagaworks.workflows.iterative import IterativeSearchWorkflow
from tests.corpus import store_documents
from tests.orders import wait_for_status


async def _run(client: Client, task_queue: str, request: IterativeInput):
    handle = await client.start_workflow(
        IterativeSearchWorkflow.run, request, id=f"it-{uuid.uuid4()}", task_queue=task_queue
    )
    return handle, await asyncio.wait_for(handle.result(), 120)


async def test_reaching_the_target_stops_the_search(dev_client: Client, db: Database, task_queue: str) -> None:
    store_documents(db)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        _, result = await _run(
            dev_client, task_queue, IterativeInput(query="exponential backoff jitter", target_quality=0.5)
        )
    assert (result.stopped, result.iterations) == ("target-reached", 1)
    best = result.best
    assert best.hits and best.hits[0].path.endswith("retries-and-backoff.md")
    assert best.quality == quality_of("exponential backoff jitter", best.hits)  # measured on the hits
    assert best.quality.coverage == 1.0


async def test_the_cap_ends_the_loop_with_the_best_round_across_continue_as_new(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    store_documents(db)
    request = IterativeInput(
        query="idempotency key refund duplicate", target_quality=1.0, max_iterations=4, iterations_per_run=1
    )
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle, result = await _run(dev_client, task_queue, request)
        status = await handle.query(IterativeSearchWorkflow.status)

    assert (result.stopped, result.iterations) == ("iteration-cap", 4)
    assert [r.iteration for r in result.rounds] == [1, 2, 3, 4]
    queries = [r.query for r in result.rounds]
    assert queries[0] == request.query and len(set(queries)) == 4  # each round refined the query
    assert all(q.startswith(request.query) for q in queries)
    assert result.best.quality.score == max(r.quality.score for r in result.rounds)
    assert (status.done, status.total, status.state) == (4, 4, "completed")
    # One round per run: the first three runs continued as new, carrying the rounds.
    first = dev_client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    last_event = (await first.fetch_history()).events[-1]
    assert last_event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    runs = [e async for e in dev_client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 4


async def test_nothing_stored_fails_with_a_clear_final_error(dev_client: Client, db: Database, task_queue: str) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        with pytest.raises(WorkflowFailureError) as failure:
            await _run(dev_client, task_queue, IterativeInput(query="anything at all"))
    cause = failure.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.non_retryable and "run the document pipeline first" in cause.cause.message


async def test_a_query_of_stopwords_only_names_the_field(dev_client: Client, db: Database, task_queue: str) -> None:
    store_documents(db)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        with pytest.raises(WorkflowFailureError) as failure:
            await _run(dev_client, task_queue, IterativeInput(query="the and of"))
    assert failure.value.cause.cause.message.startswith("query: ")  # type: ignore[attr-defined]  # the failure's cause is typed BaseException


async def test_cancel_during_the_loop(dev_client: Client, db: Database, task_queue: str) -> None:
    store_documents(db)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await dev_client.start_workflow(
            IterativeSearchWorkflow.run,
            IterativeInput(query="replay history", target_quality=1.0, max_iterations=1000, iterations_per_run=500),
            id=f"it-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        await wait_for_status(handle, lambda s: s.done >= 2, query=IterativeSearchWorkflow.status, timeout=60)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
