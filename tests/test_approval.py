"""The engine's approval helper in a tiny workflow: approve, reject, refusals that are
final and leave no trace, a deadline that escalates and then decides."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from sagaworks import APPROVAL_REFUSED, ApprovalAnswer, ApprovalDecision
from tests.approval_probe import (
    NOTIFIED,
    RELEASE,
    ApprovalProbe,
    ProbeInput,
    approval_state,
    notify_escalation,
    wait_for_approval_state,
)


def _worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[ApprovalProbe], activities=[notify_escalation])


async def _start(client: Client, task_queue: str, probe: ProbeInput):
    return await client.start_workflow(
        ApprovalProbe.run, probe, id=f"approval-{uuid.uuid4().hex[:8]}", task_queue=task_queue
    )


async def _refusal(handle, update: str, decision: ApprovalDecision) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(update, decision, result_type=ApprovalAnswer)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_an_approval_is_decided_once_and_refusals_are_final(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = time_skipping_env.client
    async with _worker(client, task_queue):
        handle = await _start(client, task_queue, ProbeInput(approvers=["alice", "bob"]))
        await wait_for_approval_state(handle, "pending")
        status = await handle.query(ApprovalProbe.status)
        assert (status.approval, status.approvers, status.deadline is not None) == ("pending", ["alice", "bob"], True)
        for update, decision, words in [
            ("approve", ApprovalDecision(approver="mallory"), "approver: mallory is not one of alice, bob"),
            ("approve", ApprovalDecision(approver=" "), "approver: a name is required"),
            ("reject", ApprovalDecision(approver="alice", reason=" "), "reason: a rejection needs a reason"),
        ]:
            refusal = await _refusal(handle, update, decision)
            # Final: a caller (or Temporal's CLI) must not present a refusal as worth retrying.
            assert (refusal.type, refusal.non_retryable, refusal.message) == (APPROVAL_REFUSED, True, words)
        answer = await handle.execute_update("approve", ApprovalDecision(approver="bob"), result_type=ApprovalAnswer)
        assert (answer.workflow_id, answer.decision, answer.approver) == (handle.id, "approved", "bob")
        outcome = await handle.result()
        # Nothing awaits a decision any more.
        assert await approval_state(handle) == "approved"
    assert (outcome.decision, outcome.decided_by, outcome.escalated) == ("approved", "bob", False)
    events = (await handle.fetch_history()).events
    assert sum(e.HasField("workflow_execution_update_accepted_event_attributes") for e in events) == 1


async def test_a_decision_after_the_approval_ended_is_refused(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = time_skipping_env.client
    async with _worker(client, task_queue):
        handle = await _start(client, task_queue, ProbeInput(second_group=["cto"], publish_seconds=600))
        await wait_for_approval_state(handle, "pending")
        await handle.execute_update(
            "reject", ApprovalDecision(approver="alice", reason="not now"), result_type=ApprovalAnswer
        )
        # The run goes on (its next step takes ten minutes) but nothing awaits a decision.
        refusal = await _refusal(handle, "approve", ApprovalDecision(approver="alice"))
        assert (refusal.message, refusal.non_retryable) == ("no approval is pending (approval: rejected)", True)
        outcome = await handle.result()
    assert (outcome.decision, outcome.decided_by, outcome.reason) == ("rejected", "alice", "not now")


async def test_a_missed_deadline_escalates_then_decides(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = time_skipping_env.client
    NOTIFIED.clear()
    async with _worker(client, task_queue):
        handle = await _start(
            client, task_queue, ProbeInput(deadline_seconds=1800, approvers=["alice"], second_group=["cto"])
        )
        await wait_for_approval_state(handle, "pending")
        await time_skipping_env.sleep(1801)
        await wait_for_approval_state(handle, "escalated")
        status = await handle.query(ApprovalProbe.status)
        assert (status.approval, status.approvers, status.escalation) == (
            "escalated",
            ["cto"],
            "no decision within 30 min: escalated to cto",
        )
        assert NOTIFIED == ["no decision within 30 min: escalated to cto"]
        refusal = await _refusal(handle, "approve", ApprovalDecision(approver="alice"))
        assert refusal.message == "approver: alice is not one of cto"
        outcome = await handle.result()  # nobody decides: the second deadline passes too
    assert (outcome.decision, outcome.decided_by, outcome.escalated) == ("rejected", "escalation", True)
    assert outcome.escalation == "no decision within 30 min, nor by cto within 1 h: rejected"
    assert NOTIFIED[-1] == outcome.escalation
    assert await approval_state(handle) == "rejected"


async def test_the_group_that_missed_its_deadline_cannot_decide_while_the_escalation_runs(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = time_skipping_env.client
    NOTIFIED.clear()
    RELEASE.clear()
    async with _worker(client, task_queue):
        handle = await _start(
            client,
            task_queue,
            ProbeInput(deadline_seconds=600, approvers=["alice"], second_group=["cto"], hold_escalation=True),
        )
        await wait_for_approval_state(handle, "pending")
        await time_skipping_env.sleep(601)
        await wait_for_approval_state(handle, "escalated")
        # The escalation activity is still running (held): alice's deadline has passed all the same.
        assert NOTIFIED == ["no decision within 10 min: escalated to cto"]
        refusal = await _refusal(handle, "approve", ApprovalDecision(approver="alice"))
        assert refusal.message == "approver: alice is not one of cto"
        RELEASE.set()
        await handle.execute_update("approve", ApprovalDecision(approver="cto"), result_type=ApprovalAnswer)
        outcome = await handle.result()
    assert (outcome.decision, outcome.decided_by, outcome.escalated) == ("approved", "cto", True)
