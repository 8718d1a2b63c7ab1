"""The routing family: classify a request, route it to its tier's handler; admin requests
first wait for a human decision.

The decision is the engine's approval (:class:`sagaworks.Approval`): the ``approve`` or
``reject`` Update, whose validator refuses it unless an approval is pending, the approver
is named (and in the group asked, when the input names one) and a rejection gives a
reason. The wait is a durable timer: when the deadline passes with no decision, the
request escalates as the input says (rejected, or handed to a second group with its own
deadline), and the result says so.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks import Approval, ApprovalOutcome, ApprovalUpdates, Escalation
    from sagaworks.activities.routing import RoutingActivities
    from sagaworks.contracts.routing import (
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


@workflow.defn
class RoutingWorkflow(Pausable, ApprovalUpdates):
    """Classify, (approve,) handle; the result says who decided and whether it escalated."""

    def __init__(self) -> None:
        self._classification: Classification | None = None
        self.approval = Approval()
        self._current: str | None = None
        self._done = 0

    @workflow.run
    async def run(self, request: RoutingInput) -> RoutingResult:
        """Return the tier, the approval and what the handler did."""
        await self._unpaused()
        self._current = "classify"
        classification = await workflow.execute_activity_method(
            RoutingActivities.classify_request, request, summary="classify", **policies.TEXT_ANALYSIS
        )
        self._classification = classification
        self._done += 1
        outcome: ApprovalOutcome | None = None
        if classification.tier == "admin":
            self._current = "awaiting approval"
            second = request.escalation == "second-group"
            outcome = await self.approval.wait(
                timedelta(seconds=request.deadline_seconds),
                approvers=request.approvers,
                escalations=[Escalation(request.escalation_approvers, timedelta(seconds=request.escalation_deadline_seconds))]
                if second else [],
            )
            self._done += 1
        else:
            self.approval.not_required()
        await self._unpaused()
        self._current = "handle"
        handled: HandledRequest | None = None
        if outcome is None or outcome.decision == "approved":
            handled = await workflow.execute_activity_method(
                HANDLERS[classification.tier],
                HandleInput(
                    request_id=request.request_id, requester=request.requester, text=request.text,
                    tier=classification.tier, approved_by=outcome.decided_by if outcome else None,
                ),
                summary=f"handle {classification.tier}",
                **policies.DATABASE_WRITE,
            )
        else:
            await workflow.execute_activity_method(
                RoutingActivities.record_rejection,
                RejectionInput(
                    request_id=request.request_id, requester=request.requester, tier=classification.tier,
                    rejected_by=outcome.decided_by, reason=outcome.reason or "",
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
            approval=self.approval.state or "not-required",
            decided_by=outcome.decided_by if outcome else None,
            reason=outcome.reason if outcome else None,
            escalated=outcome.escalated if outcome else False,
            escalation=outcome.escalation if outcome else None,
            handled=handled,
        )

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
            **self.approval.progress().model_dump(),
        )
