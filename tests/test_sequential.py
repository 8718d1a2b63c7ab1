"""The sequential family: four steps in order, the minimum length, cancel mid-run."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from sagaworks.activities.db import Database
from sagaworks.contracts.sequential import SEQUENTIAL_STEPS, SequentialInput
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES
from sagaworks.workflows.sequential import SequentialWorkflow
from tests.orders import wait_for_status

SAMPLE = json.loads((SAMPLES / "sequential/billing-retrospective.json").read_text())["text"]


async def test_every_step_runs_in_order_and_the_report_lists_its_timing(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await dev_client.start_workflow(
            SequentialWorkflow.run, SequentialInput(text=SAMPLE), id=f"seq-{uuid.uuid4()}", task_queue=task_queue
        )
        result = await asyncio.wait_for(handle.result(), 60)
        status = await handle.query(SequentialWorkflow.status)

    assert [s.step for s in result.steps] == list(SEQUENTIAL_STEPS)
    assert all(s.finished_at >= s.started_at for s in result.steps)
    assert all(a.finished_at <= b.started_at for a, b in itertools.pairwise(result.steps))
    assert result.profile.sentences == 10
    assert result.analysis.sentiment.label == "positive"
    for step in result.steps[:3]:
        assert f"| {step.step} | {step.outcome} | {step.seconds:.3f} |" in result.report
    assert "durable workflows" in result.analysis.keywords.keywords
    assert (status.state, status.done, status.completed_steps) == ("completed", 4, list(SEQUENTIAL_STEPS))
    # The timings are the workflow's: they match the history's activity events.
    history = await handle.fetch_history()
    scheduled = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    assert [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled] == [
        "ingest_text",
        "process_text",
        "analyse_text",
        "render_report",
    ]


@pytest.mark.parametrize("text", ["too short", "  a  \n\n\n  b   c \t "])
async def test_under_ten_characters_fails_at_ingest_naming_the_field(
    dev_client: Client, db: Database, task_queue: str, text: str
) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await dev_client.start_workflow(
            SequentialWorkflow.run, SequentialInput(text=text), id=f"seq-{uuid.uuid4()}", task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), 60)
    activity_error = failure.value.cause
    assert isinstance(activity_error, ActivityError) and activity_error.activity_type == "ingest_text"
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    assert cause.message.startswith("text: ") and "at least 10 are needed" in cause.message
    assert activity_error.retry_state is not None and "NON_RETRYABLE" in activity_error.retry_state.name


async def test_cancel_during_a_step_ends_the_run_canceled(dev_client: Client, db: Database, task_queue: str) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await dev_client.start_workflow(
            SequentialWorkflow.run,
            SequentialInput(text=SAMPLE, step_delay_seconds=10),
            id=f"seq-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        await wait_for_status(handle, lambda s: s.done == 1, query=SequentialWorkflow.status, timeout=60)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
