"""Decide a pending approval (routing family): the ``approve``/``reject`` Temporal Updates.

Shared by ``saga approve|reject`` and the HTTP API. The workflow's validator refuses a
decision with no approval pending, no approver name, an approver outside the group asked,
or a rejection without a reason; the refusal comes back as :class:`DecisionRefused`.
"""

from __future__ import annotations

from typing import Literal

from temporalio.client import Client, WorkflowUpdateFailedError

from sagaworks.contracts.routing import ApprovalAnswer, ApprovalDecision


class DecisionRefused(Exception):
    """The run refused the decision; the message says why."""


async def decide(
    client: Client,
    workflow_id: str,
    decision: Literal["approve", "reject"],
    approver: str,
    reason: str | None = None,
) -> ApprovalAnswer:
    """Send ``approve`` or ``reject`` and wait until the run accepted it."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        return await handle.execute_update(
            decision, ApprovalDecision(approver=approver, reason=reason), result_type=ApprovalAnswer
        )
    except WorkflowUpdateFailedError as refused:
        cause = refused.cause
        raise DecisionRefused(getattr(cause, "message", None) or str(cause)) from None
