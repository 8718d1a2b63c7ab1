"""The step runner (sagaworks.Steps / StepWorkflow) on the dev server: status, pause and
resume, cancel and failure that compensate, step timings from workflow time."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Worker

from sagaworks import SagaReport, Steps, StepStatus
from tests.orders import wait_for_status, wait_until_held
from tests.steps_probe import StepsProbeActivities, StepsProbeInput, StepsProbeWorkflow


@pytest_asyncio.fixture
async def probe(dev_client: Client, task_queue: str) -> AsyncIterator[StepsProbeActivities]:
    acts = StepsProbeActivities()
    async with Worker(
        dev_client, task_queue=task_queue, workflows=[StepsProbeWorkflow], activities=[acts.probe_do, acts.probe_undo]
    ):
        yield acts


async def _start(client: Client, task_queue: str, probe: StepsProbeInput) -> WorkflowHandle[Any, list[int]]:
    return await client.start_workflow(StepsProbeWorkflow.run, probe, id=f"steps-{uuid.uuid4()}", task_queue=task_queue)


async def _status(handle: WorkflowHandle[Any, Any]) -> StepStatus:
    return await handle.query(StepsProbeWorkflow.status)


async def test_a_completed_run_reports_every_step_with_its_workflow_time(
    dev_client: Client, task_queue: str, probe: StepsProbeActivities
) -> None:
    handle = await _start(dev_client, task_queue, StepsProbeInput(steps=3))
    assert await handle.result() == [10, 20, 30]
    status = await _status(handle)
    assert (status.state, status.current_step, status.done, status.total) == ("completed", None, 3, 3)
    assert status.completed_steps == ["step1", "step2", "step3"] and status.compensations == []
    assert [t.outcome for t in status.steps] == ["got 10", "got 20", "got 30"]
    # Workflow time: within the run, in order, each step within the tasks that saw it begin and end.
    events = list((await handle.fetch_history()).events)
    began, ended = events[0].event_time.ToDatetime().astimezone(), events[-1].event_time.ToDatetime().astimezone()
    assert all(began <= t.started_at <= t.finished_at <= ended for t in status.steps)
    assert all(a.finished_at <= b.started_at for a, b in itertools.pairwise(status.steps))
    assert not any(t.reused for t in status.steps)
    # Each step is scheduled under its name: what a restart reads back from the history.
    assert probe.log == ["do:1", "do:2", "do:3"]


async def test_pause_holds_before_the_next_step_and_resume_goes_on(
    dev_client: Client, task_queue: str, probe: StepsProbeActivities
) -> None:
    handle = await _start(dev_client, task_queue, StepsProbeInput(steps=3, hold_at=1))
    await asyncio.wait_for(probe.holding.wait(), 30)
    assert (await _status(handle)).current_step == "step1"
    await handle.signal(StepsProbeWorkflow.pause)
    probe.release.set()
    await wait_for_status(handle, lambda s: s.done == 1, query=StepsProbeWorkflow.status)
    await wait_until_held(handle)
    held = await _status(handle)
    assert (held.state, held.done, held.current_step) == ("paused", 1, None)
    assert probe.log == ["do:1"]
    await handle.signal(StepsProbeWorkflow.resume)
    assert await handle.result() == [10, 20, 30]
    assert (await _status(handle)).state == "completed"


async def _paused_while_its_activity_is_held(
    handle: WorkflowHandle[Any, list[int]], probe: StepsProbeActivities
) -> StepStatus:
    """Pause the run while its held activity runs, release that activity, and return the
    status once the run holds for the pause."""
    await asyncio.wait_for(probe.holding.wait(), 30)
    await handle.signal(StepsProbeWorkflow.pause)
    probe.release.set()
    await wait_until_held(handle)
    return await _status(handle)


async def test_a_step_run_again_is_part_of_that_step_a_pause_holds_after_it(
    dev_client: Client, task_queue: str, probe: StepsProbeActivities
) -> None:
    handle = await _start(dev_client, task_queue, StepsProbeInput(steps=3, hold_at=2, again_at=2))
    held = await _paused_while_its_activity_is_held(handle, probe)
    # The second run of step2 went on although the pause had arrived; step3 is held.
    assert probe.log == ["do:1", "do:2", "do:2"]
    assert (held.state, held.done, held.current_step) == ("paused", 2, None)
    await handle.signal(StepsProbeWorkflow.resume)
    assert await handle.result() == [10, 20, 30]
    done = await _status(handle)
    # Two runs of step2 in the timings; one step2 among the completed steps.
    assert done.completed_steps == ["step1", "step2", "step3"] and done.done == 3
    assert [t.step for t in done.steps] == ["step1", "step2", "step2", "step3"]


async def test_a_step_held_before_its_preparation_begins_after_it_without_holding_again(
    dev_client: Client, task_queue: str, probe: StepsProbeActivities
) -> None:
    handle = await _start(dev_client, task_queue, StepsProbeInput(steps=3, prepared_at=2, hold_at=102))
    held = await _paused_while_its_activity_is_held(handle, probe)
    # The pause arrived while step2 was being prepared: step2 ran, step3 is held.
    assert probe.log == ["do:1", "do:102", "do:2"]
    assert (held.state, held.done) == ("paused", 2)
    await handle.signal(StepsProbeWorkflow.resume)
    assert await handle.result() == [10, 20, 30]


async def test_a_failed_step_compensates_in_reverse_and_the_status_says_failed(
    dev_client: Client, task_queue: str, probe: StepsProbeActivities
) -> None:
    handle = await _start(dev_client, task_queue, StepsProbeInput(steps=4, fail_at=3))
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "SagaCompensated"
    report = SagaReport.model_validate(cause.details[0])
    # The undo of the failing step is registered before it runs: it may have taken effect.
    assert [c.step for c in report.compensations] == ["step3", "step2", "step1"]
    assert probe.log == ["do:1", "do:2", "do:3", "undo:3", "undo:2", "undo:1"]
    status = await _status(handle)
    assert (status.state, status.done, status.current_step) == ("failed", 2, None)
    assert [c.step for c in status.compensations] == ["step3", "step2", "step1"]


async def test_cancel_lets_the_running_step_finish_then_compensates_and_ends_canceled(
    dev_client: Client, task_queue: str, probe: StepsProbeActivities
) -> None:
    handle = await _start(dev_client, task_queue, StepsProbeInput(steps=4, hold_at=2))
    await asyncio.wait_for(probe.holding.wait(), 30)
    await handle.cancel()
    probe.release.set()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert probe.log == ["do:1", "do:2", "undo:2", "undo:1"]
    status = await _status(handle)
    assert status.state == "canceled" and [c.step for c in status.compensations] == ["step2", "step1"]


async def test_closing_a_runs_coroutine_inside_the_steps_block_touches_nothing_of_the_workflow() -> None:
    """A worker closes a run's coroutine (GeneratorExit) when it evicts or drops the run,
    outside the workflow's event loop: leaving the block must not call the workflow API
    (which raises there, reported as an "Exception ignored" while closing) nor change the
    run's state."""
    steps = Steps()
    assert await steps.__aexit__(GeneratorExit, GeneratorExit(), None) is False
    assert steps.state == "running" and steps.current_step is None


async def test_a_step_naming_its_activity_needs_the_result_type() -> None:
    with pytest.raises(TypeError, match="step 'stage' names its activity \\('run_stage'\\): give its result_type"):
        await Steps().run("stage", "run_stage", None)
