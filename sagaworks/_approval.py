"""A human decision inside a workflow: approve/reject Updates, a deadline, escalation.

Used from workflow code. :class:`Approval` holds the state (what waits, who may decide,
until when) and waits on a durable timer; :class:`ApprovalUpdates` gives a workflow the
``approve`` and ``reject`` Updates over its ``approval`` attribute. A validator refuses a
decision with nothing awaiting one, an approver outside the group asked, or a rejection
without a reason; a refused Update leaves no trace in the history, and its failure is a
non-retryable ``ApprovalRefused`` (Temporal's CLI then does not call it retryable).

The state is published in the workflow's ``status`` query (:meth:`Approval.progress`, the
fields of :class:`ApprovalProgress`) and, since a client must never poll a Query and then
send an Update because of its answer, as the ``SagaApproval`` keyword search attribute
(``pending``, ``escalated``, ``approved``, ``rejected``): a client that waits for an
approval lists runs by it, or sends the Update and takes a refusal as "not yet".

The search attribute must be registered on the server: the embedded dev server registers
it (``saga dev up``), and so does ``saga worker`` at start where the server allows it; where
it does not (Temporal Cloud) create it in the namespace (``temporal operator search-attribute
create --name SagaApproval --type Keyword``) or pass ``search_attribute=None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

ApprovalState = Literal["not-required", "pending", "escalated", "approved", "rejected"]
"""Where an approval stands: ``escalated`` waits on the group asked after a missed deadline."""

APPROVAL_SEARCH_ATTRIBUTE = SearchAttributeKey.for_keyword("SagaApproval")
"""The keyword search attribute an :class:`Approval` publishes its state in."""

APPROVAL_REFUSED = "ApprovalRefused"
"""The ``ApplicationError`` type of a decision the validator refuses (never retryable)."""

AUTOMATIC_DECIDER = "escalation"
"""Who a decision made by the last missed deadline is recorded as decided by."""

_SEARCH_ATTRIBUTE_PATCH = "approval-search-attribute"
"""Runs recorded before the search attribute was published replay without it."""


class ApprovalDecision(BaseModel):
    """The argument of the ``approve`` and ``reject`` Updates."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    approver: str
    """Who decides (in the group asked, when the workflow names one)."""
    reason: str | None = None
    """Why; required when rejecting."""


class ApprovalAnswer(BaseModel):
    """What an accepted ``approve``/``reject`` Update returns to its caller."""

    workflow_id: str
    decision: Literal["approved", "rejected"]
    approver: str
    reason: str | None = None


class ApprovalOutcome(BaseModel):
    """How an approval ended: the decision, who made it, and any escalation on the way."""

    decision: Literal["approved", "rejected"]
    decided_by: str
    """The approver, or :data:`AUTOMATIC_DECIDER` when the last deadline passed."""
    reason: str | None
    escalated: bool
    """A deadline passed without a decision."""
    escalation: str | None
    """What the escalation did, in words (``no decision within 1 h: escalated to cto``)."""


class ApprovalProgress(BaseModel):
    """The approval's fields of a workflow's ``status`` query: subclass it beside
    ``ProgressStatus`` and fill it from :meth:`Approval.progress`. The CLI, the API and
    the console read these names for any family."""

    approval: ApprovalState | None = None
    """None until the workflow reaches its approval."""
    deadline: datetime | None = None
    """When the pending approval escalates (or is decided automatically)."""
    approvers: list[str] = []
    """Who may decide now (empty: anyone named)."""
    escalation: str | None = None
    """What a missed deadline did, once one did."""


@dataclass(frozen=True)
class Escalation:
    """The next group asked after a missed deadline, and how long it has."""

    approvers: Sequence[str]
    deadline: timedelta


@dataclass(frozen=True)
class Escalated:
    """What an escalation callback is told: which deadline passed and who is asked next."""

    level: int
    """1 for the first deadline, 2 for the first escalation's..."""
    waited: timedelta
    next_approvers: Sequence[str] | None
    """The group asked now; None when the approval is about to be decided automatically."""
    note: str
    """The words the outcome and the status will carry."""


def duration_text(span: timedelta) -> str:
    """``24 h``, ``30 min`` or ``45 s``: the largest whole unit."""
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=APPROVAL_REFUSED, non_retryable=True)


class Approval:
    """One decision a workflow waits for (create it in the workflow's ``__init__``).

    ``await approval.wait(deadline, ...)`` returns the :class:`ApprovalOutcome`; the
    workflow's ``approve``/``reject`` Updates (:class:`ApprovalUpdates`) call
    :meth:`check` in their validators and :meth:`decide` in their handlers.
    """

    def __init__(self, *, search_attribute: SearchAttributeKey[str] | None = APPROVAL_SEARCH_ATTRIBUTE) -> None:
        self.state: ApprovalState | None = None
        self.deadline: datetime | None = None
        self.approvers: list[str] = []
        self.escalation: str | None = None
        self._answer: ApprovalAnswer | None = None
        self._search_attribute = search_attribute

    async def wait(
        self,
        deadline: timedelta,
        *,
        approvers: Sequence[str] = (),
        escalations: Sequence[Escalation] = (),
        on_escalation: Callable[[Escalated], Awaitable[None]] | None = None,
    ) -> ApprovalOutcome:
        """Wait for ``approve``/``reject`` until ``deadline`` (a durable timer).

        Each missed deadline calls ``on_escalation`` (an activity that notifies, say) and
        asks the next group of ``escalations`` with its own deadline; when the last one
        passes the approval is rejected, recorded as decided by :data:`AUTOMATIC_DECIDER`.
        """
        self.approvers = list(approvers)
        self._publish("pending")
        waits = [(deadline, list(approvers)), *((e.deadline, list(e.approvers)) for e in escalations)]
        missed: list[str] = []
        for level, (span, group) in enumerate(waits, 1):
            if await self._decided_within(span):
                assert self._answer is not None
                return ApprovalOutcome(
                    decision=self._answer.decision,
                    decided_by=self._answer.approver,
                    reason=self._answer.reason,
                    escalated=level > 1,
                    escalation=self.escalation,
                )
            last = level == len(waits)
            missed.append(
                f"no decision within {duration_text(span)}"
                if level == 1
                else f"nor by {', '.join(group) or 'anyone'} within {duration_text(span)}"
            )
            following = None if last else waits[level][1]
            self.escalation = ", ".join(missed) + (
                ": rejected automatically"
                if level == 1 and last
                else ": rejected"
                if last
                else f": escalated to {', '.join(following or ()) or 'anyone'}"
            )
            # The group that missed its deadline can decide no more, even while the
            # escalation callback runs: the next group is asked (or the rejection made) first.
            if following is None:
                self._publish("rejected")
            else:
                self.approvers = following
                self._publish("escalated")
            if on_escalation is not None:
                await on_escalation(Escalated(level=level, waited=span, next_approvers=following, note=self.escalation))
        return ApprovalOutcome(
            decision="rejected",
            decided_by=AUTOMATIC_DECIDER,
            reason=self.escalation,
            escalated=True,
            escalation=self.escalation,
        )

    def not_required(self) -> None:
        """Record that this run needs no approval (shown as ``not-required``)."""
        self.state = "not-required"

    @property
    def awaiting(self) -> bool:
        """Whether a decision is awaited now."""
        return self.state in ("pending", "escalated") and self._answer is None

    def check(self, decision: ApprovalDecision, *, rejecting: bool) -> None:
        """The Updates' validator: refuse with a non-retryable ``ApprovalRefused`` error
        naming the field, so nothing is recorded."""
        if not self.awaiting:
            raise _refused(f"no approval is pending (approval: {self.state or 'not reached yet'})")
        approver = decision.approver.strip()
        if not approver:
            raise _refused("approver: a name is required")
        if self.approvers and approver not in self.approvers:
            raise _refused(f"approver: {decision.approver} is not one of {', '.join(self.approvers)}")
        if rejecting and not (decision.reason or "").strip():
            raise _refused("reason: a rejection needs a reason")

    def decide(self, decision: ApprovalDecision, *, rejecting: bool) -> ApprovalAnswer:
        """The Updates' handler: record the decision that :meth:`check` let through."""
        self._answer = ApprovalAnswer(
            workflow_id=workflow.info().workflow_id,
            decision="rejected" if rejecting else "approved",
            approver=decision.approver.strip(),
            reason=(decision.reason or "").strip() or None,
        )
        self._publish(self._answer.decision)
        return self._answer

    def progress(self) -> ApprovalProgress:
        """The approval's fields of the ``status`` query."""
        return ApprovalProgress(
            approval=self.state, deadline=self.deadline, approvers=list(self.approvers), escalation=self.escalation
        )

    async def _decided_within(self, span: timedelta) -> bool:
        self.deadline = workflow.now() + span
        try:
            await workflow.wait_condition(lambda: self._answer is not None, timeout=span)
        except TimeoutError:
            return False
        finally:
            self.deadline = None
        return True

    def _publish(self, state: ApprovalState) -> None:
        self.state = state
        if self._search_attribute is not None and workflow.patched(_SEARCH_ATTRIBUTE_PATCH):
            workflow.upsert_search_attributes([self._search_attribute.value_set(state)])


class ApprovalUpdates:
    """The ``approve`` and ``reject`` Updates, over the workflow's ``approval`` attribute.

    A workflow class inherits it and sets ``self.approval = Approval()`` in ``__init__``;
    before it returns it waits for ``workflow.all_handlers_finished``.
    """

    approval: Approval

    @workflow.update
    def approve(self, decision: ApprovalDecision) -> ApprovalAnswer:
        """Approve what waits for a decision."""
        return self.approval.decide(decision, rejecting=False)

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        self.approval.check(decision, rejecting=False)

    @workflow.update
    def reject(self, decision: ApprovalDecision) -> ApprovalAnswer:
        """Reject what waits for a decision (a reason is required)."""
        return self.approval.decide(decision, rejecting=True)

    @reject.validator
    def _validate_reject(self, decision: ApprovalDecision) -> None:
        self.approval.check(decision, rejecting=True)
