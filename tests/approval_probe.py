"""A tiny workflow on the engine's approval helper: wait for approve/reject within a
deadline, escalate to a second group (notifying through an activity), then reject."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.client import WorkflowHandle

with workflow.unsafe.imports_passed_through():
    from sagaworks import (
        APPROVAL_SEARCH_ATTRIBUTE,
        Approval,
        ApprovalOutcome,
        ApprovalProgress,
        ApprovalUpdates,
        Escalated,
        Escalation,
        ProgressStatus,
    )


class ProbeInput(BaseModel):
    deadline_seconds: int = 3600
    approvers: list[str] = []
    second_group: list[str] = []
    """Asked after the first deadline, for one hour (none: rejected at the deadline)."""
    publish_seconds: int = 0
    """How long the step after the decision takes (a timer)."""
    hold_escalation: bool = False
    """The escalation activity waits for :data:`RELEASE` (a decision sent meanwhile)."""


class Notice(BaseModel):
    note: str
    hold: bool = False


class ProbeStatus(ProgressStatus, ApprovalProgress):
    pass


NOTIFIED: list[str] = []
"""What the escalation activity was told, in this test process."""
RELEASE = asyncio.Event()
"""Lets a held escalation activity finish."""


@activity.defn
async def notify_escalation(notice: Notice) -> None:
    NOTIFIED.append(notice.note)
    if notice.hold:
        await RELEASE.wait()


@workflow.defn
class ApprovalProbe(ApprovalUpdates):
    def __init__(self) -> None:
        self.approval = Approval()

    @workflow.run
    async def run(self, probe: ProbeInput) -> ApprovalOutcome:
        outcome = await self.approval.wait(
            timedelta(seconds=probe.deadline_seconds),
            approvers=probe.approvers,
            escalations=[Escalation(probe.second_group, timedelta(hours=1))] if probe.second_group else [],
            on_escalation=lambda escalated: self._escalate(escalated, probe.hold_escalation),
        )
        if probe.publish_seconds:
            await workflow.sleep(probe.publish_seconds)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    async def _escalate(self, escalated: Escalated, hold: bool) -> None:
        await workflow.execute_activity(
            notify_escalation, Notice(note=escalated.note, hold=hold), start_to_close_timeout=timedelta(seconds=60)
        )

    @workflow.query
    def status(self) -> ProbeStatus:
        return ProbeStatus(
            state="running", current_step="approval", done=0, total=1, **self.approval.progress().model_dump()
        )


async def approval_state(handle: WorkflowHandle[Any, Any]) -> str | None:
    """The run's ``SagaApproval`` search attribute (read from its description, not a query)."""
    return (await handle.describe()).typed_search_attributes.get(APPROVAL_SEARCH_ATTRIBUTE)


async def wait_for_approval_state(handle: WorkflowHandle[Any, Any], state: str, timeout: float = 60) -> None:
    """Wait until the run publishes ``state`` in its search attribute."""

    async def poll() -> None:
        while await approval_state(handle) != state:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)
