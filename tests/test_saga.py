"""The Saga helper on the time-skipping test server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from sagaworks import SagaReport
from tests.saga_probe import ProbeActivities, ProbeInput, SagaProbeWorkflow

STEPS = 4


def _probe_worker(env: WorkflowEnvironment, acts: ProbeActivities) -> Worker:
    return Worker(
        env.client,
        task_queue=f"tq-{uuid.uuid4()}",
        workflows=[SagaProbeWorkflow],
        activities=[acts.probe_step, acts.probe_undo],
    )


async def _run_probe(env: WorkflowEnvironment, acts: ProbeActivities, probe: ProbeInput):
    async with _probe_worker(env, acts) as worker:
        return await env.client.execute_workflow(
            SagaProbeWorkflow.run, probe, id=f"probe-{uuid.uuid4()}", task_queue=worker.task_queue
        )


def _report(error: WorkflowFailureError) -> tuple[ApplicationError, SagaReport]:
    cause = error.cause
    assert isinstance(cause, ApplicationError)
    return cause, SagaReport.model_validate(cause.details[0])


async def test_success_runs_no_compensation(time_skipping_env: WorkflowEnvironment) -> None:
    acts = ProbeActivities()
    assert await _run_probe(time_skipping_env, acts, ProbeInput(steps=STEPS)) == [1, 2, 3, 4]
    assert not [e for e in acts.log if e.startswith("undo")]


@pytest.mark.parametrize("k", range(1, STEPS + 1))
async def test_failure_at_step_k_undoes_previous_steps_in_reverse(
    time_skipping_env: WorkflowEnvironment, k: int
) -> None:
    acts = ProbeActivities()
    with pytest.raises(WorkflowFailureError) as failure:
        await _run_probe(time_skipping_env, acts, ProbeInput(steps=STEPS, fail_at=k))

    expected_undos = [f"undo:{n}" for n in range(k - 1, 0, -1)]
    assert [e for e in acts.log if e.startswith("undo")] == expected_undos
    assert f"do:{k + 1}" not in acts.log
    cause, report = _report(failure.value)
    assert cause.type == "SagaCompensated" and cause.non_retryable
    assert report.failed_step == "probe_step"
    assert report.cause == f"step {k} failed"
    assert [r.step for r in report.compensations] == [f"step{n}" for n in range(k - 1, 0, -1)]
    assert all(r.outcome == "compensated" for r in report.compensations)
    # The original failure is kept as the cause of the saga's error.
    assert isinstance(cause.__cause__, Exception)
    assert f"step {k} failed" in str(cause.__cause__.__cause__)


async def test_parallel_mode_runs_compensations_concurrently(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    acts = ProbeActivities()
    # Each undo waits until all three are in flight at once: run in sequence, they would
    # time out at the barrier.
    acts.barrier = asyncio.Barrier(STEPS - 1)
    with pytest.raises(WorkflowFailureError) as failure:
        await _run_probe(time_skipping_env, acts, ProbeInput(steps=STEPS, fail_at=STEPS, parallel=True))
    assert sorted(e for e in acts.log if e.startswith("undo")) == ["undo:1", "undo:2", "undo:3"]
    assert acts.max_in_flight == STEPS - 1
    _, report = _report(failure.value)
    assert report.fully_compensated and len(report.compensations) == STEPS - 1


async def test_sequential_mode_does_not_overlap_compensations(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    acts = ProbeActivities()
    with pytest.raises(WorkflowFailureError):
        await _run_probe(time_skipping_env, acts, ProbeInput(steps=STEPS, fail_at=STEPS))
    assert acts.max_in_flight == 1
    assert [e for e in acts.log if e.startswith("undo")] == ["undo:3", "undo:2", "undo:1"]


async def test_compensation_failing_transiently_is_retried(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    acts = ProbeActivities()
    with pytest.raises(WorkflowFailureError) as failure:
        await _run_probe(time_skipping_env, acts, ProbeInput(steps=STEPS, fail_at=4, flaky_undo_at=2))
    assert acts.attempts["undo:2"] == 2
    assert [e for e in acts.log if e.startswith("undo")] == ["undo:3", "undo:2", "undo:1"]
    _, report = _report(failure.value)
    assert report.fully_compensated


async def test_compensation_that_fails_for_good_is_reported_and_others_still_run(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    acts = ProbeActivities()
    with pytest.raises(WorkflowFailureError) as failure:
        await _run_probe(time_skipping_env, acts, ProbeInput(steps=STEPS, fail_at=4, broken_undo_at=2))
    assert [e for e in acts.log if e.startswith("undo")] == ["undo:3", "undo:1"]
    cause, report = _report(failure.value)
    assert cause.type == "SagaCompensationFailed"
    assert [(r.step, r.outcome) for r in report.compensations] == [
        ("step3", "compensated"),
        ("step2", "failed"),
        ("step1", "compensated"),
    ]
    assert report.compensations[1].error == "undo 2 is broken"


@pytest.mark.parametrize("k", [1, 3])
async def test_cancellation_during_step_k_compensates_and_ends_canceled(
    time_skipping_env: WorkflowEnvironment, k: int
) -> None:
    acts = ProbeActivities()
    env = time_skipping_env
    async with _probe_worker(env, acts) as worker:
        handle = await env.client.start_workflow(
            SagaProbeWorkflow.run,
            ProbeInput(steps=STEPS, block_at=k),
            id=f"probe-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
        await asyncio.wait_for(acts.blocked.wait(), timeout=30)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert [e for e in acts.log if e.startswith("undo")] == [f"undo:{n}" for n in range(k - 1, 0, -1)]
    description = await handle.describe()
    assert description.status is not None and description.status.name == "CANCELED"


@pytest.mark.parametrize(
    ("probe", "state"),
    [
        (ProbeInput(steps=2), "completed"),
        (ProbeInput(steps=STEPS, fail_at=3), "failed"),
    ],
)
async def test_the_saga_tracks_how_the_run_ended(
    time_skipping_env: WorkflowEnvironment, probe: ProbeInput, state: str
) -> None:
    env, acts = time_skipping_env, ProbeActivities()
    async with _probe_worker(env, acts) as worker:
        handle = await env.client.start_workflow(
            SagaProbeWorkflow.run, probe, id=f"probe-{uuid.uuid4()}", task_queue=worker.task_queue
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        # The workflow never writes a state of its own: the saga's is the answer.
        assert await handle.query(SagaProbeWorkflow.state) == state


async def test_the_saga_says_canceled_after_a_cancel(time_skipping_env: WorkflowEnvironment) -> None:
    env, acts = time_skipping_env, ProbeActivities()
    async with _probe_worker(env, acts) as worker:
        handle = await env.client.start_workflow(
            SagaProbeWorkflow.run,
            ProbeInput(steps=STEPS, block_at=2),
            id=f"probe-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
        await asyncio.wait_for(acts.blocked.wait(), timeout=30)
        assert await handle.query(SagaProbeWorkflow.state) == "running"
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert await handle.query(SagaProbeWorkflow.state) == "canceled"
    assert [e for e in acts.log if e.startswith("undo")] == ["undo:1"]
