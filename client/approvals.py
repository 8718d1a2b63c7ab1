"""Decide a pending approval of any family that declares one: the ``approve``/``reject``
Temporal Updates of :class:`sagaworks.ApprovalUpdates`.

Shared by ``saga approve|reject`` and the HTTP API. The workflow's validator refuses a
decision with no approval pending, no approver name, an approver outside the group asked,
or a rejection without a reason; the refusal comes back as :class:`DecisionRefused`.
"""

from __future__ import annotations

from typing import Literal

from temporalio.client import Client, WorkflowUpdateFailedError

from sagaworks import ApprovalAnswer, ApprovalDecision, registry


class DecisionRefused(Exception):
    """The run refused the decision (or has no approval); the message says why."""


async def decide(
    client: Client,
    workflow_id: str,
    decision: Literal["approve", "reject"],
    approver: str,
    reason: str | None = None,
) -> ApprovalAnswer:
    """Send ``approve`` or ``reject`` and wait until the run accepted it."""
    handle = client.get_workflow_handle(workflow_id)
    workflow_type = (await handle.describe()).workflow_type
    fam = registry().family_of_type(workflow_type)
    if fam is None or fam.approval is None:
        with_one = ", ".join(f.name for f in registry().families if f.approval is not None) or "none"
        raise DecisionRefused(
            f"a {fam.name if fam else workflow_type} run waits for no approval (families with one: {with_one})"
        )
    try:
        return await handle.execute_update(
            decision, ApprovalDecision(approver=approver, reason=reason), result_type=ApprovalAnswer
        )
    except WorkflowUpdateFailedError as refused:
        cause = refused.cause
        raise DecisionRefused(getattr(cause, "message", None) or str(cause)) from None
