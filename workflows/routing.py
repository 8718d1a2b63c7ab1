"""The routing family: classify a request, route it to its tier's handler; admin requests
first wait for a human decision.

The decision is a Temporal Update, ``approve`` or ``reject``, whose validator refuses it
unless an approval is pending, the approver is named (and in the group asked, when the
input names one) and a rejection gives a reason; a refused update leaves no trace in the
history. The wait is a durable timer: when the deadline passes with no decision, the
request escalates as the input says (rejected, or handed to a second group with its own
deadline), and the result says so.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks.activities.routing import RoutingActivities
    from sagaworks.contracts.routing import (
        Approval,
        ApprovalAnswer,
        ApprovalDecision,
        Classification,
        HandledRequest,
        HandleInput,
        RejectionInput,
        RoutingInput,
        RoutingResult,
        RoutingStatus,
    )
    from sagaworks import policies
    from sagaworks import Pausable

HANDLERS = {
    "admin": RoutingActivities.handle_admin,
    "premium": RoutingActivities.handle_premium,
    "standard": RoutingActivities.handle_standard,
}
ESCALATION_APPROVER = "escalation"
"""Who a rejection by a missed deadline is recorded as decided by."""


@workflow.defn
class RoutingWorkflow(Pausable):
    """Classify, (approve,) handle; the result says who decided and whether it escalated."""

    def __init__(self) -> None:
        self._request_id = ""
        self._classification: Classification | None = None
        self._approval: Approval | None = None
        self._decided: tuple[str, str, str | None] | None = None
        """(approved or rejected, approver, reason)"""
        self._deadline: datetime | None = None
        self._group: list[str] = []
        self._current: str | None = None
        self._done = 0

    @workflow.run
    async def run(self, request: RoutingInput) -> RoutingResult:
        """Return the tier, the approval and what the handler did."""
        self._request_id = request.request_id
        await self._unpaused()
        self._current = "classify"
        classification = await workflow.execute_activity_method(
            RoutingActivities.classify_request, request, summary="classify", **policies.TEXT_ANALYSIS
        )
        self._classification = classification
        self._done += 1
        escalated, escalation = False, None
        if classification.tier == "admin":
            escalated, escalation = await self._await_decision(request)
            self._done += 1
        else:
            self._approval = "not-required"
        await self._unpaused()
        self._current = "handle"
        decision, approver, reason = self._decided or ("approved", None, None)
        handled: HandledRequest | None = None
        if decision == "approved":
            handled = await workflow.execute_activity_method(
                HANDLERS[classification.tier],
                HandleInput(
                    request_id=request.request_id, requester=request.requester, text=request.text,
                    tier=classification.tier, approved_by=approver,
                ),
                summary=f"handle {classification.tier}",
                **policies.DATABASE_WRITE,
            )
        else:
            await workflow.execute_activity_method(
                RoutingActivities.record_rejection,
                RejectionInput(
                    request_id=request.request_id, requester=request.requester, tier=classification.tier,
                    rejected_by=approver or ESCALATION_APPROVER, reason=reason or "",
                ),
                summary="record rejection",
                **policies.DATABASE_WRITE,
            )
        self._done += 1
        self._current = None
        self._state = "completed"
        # An update accepted just before the end finishes before the run returns.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RoutingResult(
            request_id=request.request_id,
            classification=classification,
            approval=self._approval or "not-required",
            decided_by=approver,
            reason=reason,
            escalated=escalated,
            escalation=escalation,
            handled=handled,
        )

    async def _await_decision(self, request: RoutingInput) -> tuple[bool, str | None]:
        """Wait for ``approve``/``reject``; on a missed deadline escalate as configured."""
        self._current = "awaiting approval"
        self._approval, self._group = "pending", list(request.approvers)
        if await self._decided_within(request.deadline_seconds):
            return False, None
        waited = _duration(request.deadline_seconds)
        if request.escalation == "second-group":
            self._approval, self._group = "escalated", list(request.escalation_approvers)
            if await self._decided_within(request.escalation_deadline_seconds):
                return True, f"no decision within {waited}: escalated to {', '.join(self._group)}"
            note = (
                f"no decision within {waited}, nor by {', '.join(self._group)} within "
                f"{_duration(request.escalation_deadline_seconds)}: rejected"
            )
        else:
            note = f"no decision within {waited}: rejected automatically"
        self._decided = ("rejected", ESCALATION_APPROVER, note)
        self._approval = "rejected"
        return True, note

    async def _decided_within(self, seconds: int) -> bool:
        self._deadline = workflow.now() + timedelta(seconds=seconds)
        try:
            await workflow.wait_condition(lambda: self._decided is not None, timeout=timedelta(seconds=seconds))
        except asyncio.TimeoutError:
            return False
        finally:
            self._deadline = None
        return True

    def _decide(self, decision: str, given: ApprovalDecision) -> ApprovalAnswer:
        self._decided = (decision, given.approver.strip(), (given.reason or "").strip() or None)
        self._approval = decision  # type: ignore[assignment]
        return ApprovalAnswer(request_id=self._request_id, decision=decision, approver=given.approver.strip())  # type: ignore[arg-type]

    def _check(self, given: ApprovalDecision, *, rejecting: bool) -> None:
        if self._approval not in ("pending", "escalated") or self._decided is not None:
            raise ValueError(f"no approval is pending (approval: {self._approval or 'not classified yet'})")
        if not given.approver.strip():
            raise ValueError("approver: a name is required")
        if self._group and given.approver.strip() not in self._group:
            raise ValueError(f"approver: {given.approver} is not one of {', '.join(self._group)}")
        if rejecting and not (given.reason or "").strip():
            raise ValueError("reason: a rejection needs a reason")

    @workflow.update
    def approve(self, decision: ApprovalDecision) -> ApprovalAnswer:
        """Approve the pending admin request."""
        return self._decide("approved", decision)

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        self._check(decision, rejecting=False)

    @workflow.update
    def reject(self, decision: ApprovalDecision) -> ApprovalAnswer:
        """Reject the pending admin request (a reason is required)."""
        return self._decide("rejected", decision)

    @reject.validator
    def _validate_reject(self, decision: ApprovalDecision) -> None:
        self._check(decision, rejecting=True)

    @workflow.query
    def status(self) -> RoutingStatus:
        """The step, the tier, the approval and its deadline."""
        admin = self._classification is not None and self._classification.tier == "admin"
        return RoutingStatus(
            state=self._state,
            current_step=self._current,
            done=self._done,
            total=3 if admin else 2,
            tier=self._classification.tier if self._classification else None,
            approval=self._approval,
            deadline=self._deadline,
            approvers=self._group,
        )


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
