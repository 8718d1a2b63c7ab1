"""The routing family: classify a request, route it to its tier's handler; admin requests
first wait for a human decision.

The steps run on the step runner (:class:`sagaworks.StepWorkflow`): ``status``,
pause/resume before each step, step timings, and ``saga restart ID --from handle`` reusing
the classification (an admin request then waits for a decision again: a decision belongs
to the run that asked for it).

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
    from sagaworks import Approval, ApprovalOutcome, ApprovalUpdates, Escalation, StepWorkflow, policies
    from sagaworks.activities.routing import RoutingActivities
    from sagaworks.contracts.routing import (
        ROUTING_STEPS,
        Classification,
        HandledRequest,
        HandleInput,
        RejectionInput,
        RoutingInput,
        RoutingResult,
        RoutingStatus,
    )

HANDLERS = {
    "admin": RoutingActivities.handle_admin,
    "premium": RoutingActivities.handle_premium,
    "standard": RoutingActivities.handle_standard,
}


@workflow.defn
class RoutingWorkflow(StepWorkflow, ApprovalUpdates):
    """Classify, (approve,) handle; the result says who decided and whether it escalated."""

    def __init__(self) -> None:
        super().__init__()
        self._classification: Classification | None = None
        self.approval = Approval()

    @workflow.run
    async def run(self, request: RoutingInput) -> RoutingResult:
        """Return the tier, the approval and what the handler did."""
        async with self.steps.plan(ROUTING_STEPS) as steps:
            classification = self._classification = await steps.run(
                "classify",
                RoutingActivities.classify_request,
                request,
                options=policies.TEXT_ANALYSIS,
                describe=lambda c: f"{c.tier} by {c.classifier}" + (" (fallback)" if c.fallback else ""),
            )
            outcome: ApprovalOutcome | None = None
            if classification.tier == "admin":
                second = request.escalation == "second-group"
                outcome = await self.approval.wait(
                    timedelta(seconds=request.deadline_seconds),
                    approvers=request.approvers,
                    escalations=[
                        Escalation(request.escalation_approvers, timedelta(seconds=request.escalation_deadline_seconds))
                    ]
                    if second
                    else [],
                )
            else:
                self.approval.not_required()
            handled: HandledRequest | None = None
            if outcome is None or outcome.decision == "approved":
                handle = HandleInput(
                    request_id=request.request_id,
                    requester=request.requester,
                    text=request.text,
                    tier=classification.tier,
                    approved_by=outcome.decided_by if outcome else None,
                )
                handled = await steps.run(
                    "handle",
                    HANDLERS[classification.tier],
                    handle,
                    describe=lambda h: f"{h.tier}: {h.response_hours} h",
                )
            else:
                rejection = RejectionInput(
                    request_id=request.request_id,
                    requester=request.requester,
                    tier=classification.tier,
                    rejected_by=outcome.decided_by,
                    reason=outcome.reason or "",
                )
                await steps.run("record rejection", RoutingActivities.record_rejection, rejection)
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
        status = self.steps.status()
        admin = self._classification is not None and self._classification.tier == "admin"
        decided = self.approval.state in ("approved", "rejected")
        awaiting = self.approval.state in ("pending", "escalated")
        return RoutingStatus(
            **{
                **dict(status),
                "current_step": "awaiting approval" if awaiting else status.current_step,
                "done": status.done + (1 if admin and decided else 0),
                "total": len(ROUTING_STEPS) + (1 if admin else 0),
            },
            tier=self._classification.tier if self._classification else None,
            **self.approval.progress().model_dump(),
        )
