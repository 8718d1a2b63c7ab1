"""``support-ticket``: a ticket classified, routed, looked into through MCP, then worked on.

The run lives as long as the ticket. Its two steps run on the step runner: ``classify``
(through the LLM gateway on the LLM task queue, the keyword rules of
``contracts/support.py`` being its declared fallback: they answer when no model is
configured, when the gateway's breaker is open, its budget spent or the answer unusable,
and the ticket says why in ``classification_fallback``), then ``look up``: routed to its
type's handler, it is looked into through MCP (the customer's tier in the database, recent
logs on the filesystem, products, incidents). Then it waits for people:
``assign`` and ``resolve`` are Updates whose validators refuse what the ticket's state does
not allow, ``comment`` is a signal, and ``reopen`` is accepted for 7 days after the
resolution, after which the ticket closes and the run returns.

A first-response SLA per priority runs while nobody is assigned; when it fires the ticket
escalates: the priority goes up a level, someone is notified (an activity) and the
escalation is recorded. Trigger words (complaint, manager, unacceptable...), a CRITICAL
priority or a premium customer with a HIGH one escalate at once. Search attributes
(TicketType, TicketPriority, TicketState, TicketAssignee) follow every change, so queues
are visibility queries (``saga tickets --priority CRITICAL --state open``). Every activity
of a ticket carries a task-queue priority from its priority (CRITICAL first; the rules'
estimate orders the classification itself), so a backlog of LOW tickets does not hold a
CRITICAL one.
"""

from __future__ import annotations

import re
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from sagaworks import McpTools, StepWorkflow, outlived_failure, refusal
    from sagaworks.activities.support_ticket import TicketClassifier, notify_escalation
    from sagaworks.contracts.support import (
        MAX_COMMENTS,
        REOPEN_WINDOW,
        TICKET_ASSIGNEE,
        TICKET_PRIORITY,
        TICKET_STATE,
        TICKET_TYPE,
        AssignRequest,
        Classification,
        ClassifyTicketInput,
        Comment,
        Escalation,
        EscalationNotice,
        Lookup,
        ReopenRequest,
        ResolveRequest,
        TicketInput,
        TicketStatus,
        TicketView,
        classify,
        raised,
        task_priority,
    )
    from sagaworks.policies import LLM_PASS, MCP_BUDGETS, NOTIFY, ActivityOptions, llm_task_queue, mcp_call

CLASSIFY_PATCH = "ticket-classify-activity"
"""Runs since this patch classify through the ``classify_ticket`` activity (LLM or rules);
earlier ones applied the rules in the workflow (tests/histories/support_*.json)."""

STEPS = ("classify", "look up")
"""The ticket's automated steps; then it waits for people (assign, resolve), which are
Updates, not steps. A restart from ``look up`` keeps the classification."""

LOOKUPS: dict[str, list[tuple[str, str, str]]] = {
    # type -> (what, server, read_query SQL or "logs") beyond the customer's tier
    "customer_service": [],
    "technical_support": [("recent log files", "files", "logs")],
    "sales_inquiry": [
        ("plans and prices", "database", "SELECT plan, monthly_price_eur, seats, features FROM products")
    ],
    "data_analysis": [("recent incidents", "database", "SELECT * FROM incidents ORDER BY opened DESC LIMIT 5")],
    "general_query": [],
}


@workflow.defn
class SupportTicket(StepWorkflow):
    """One support ticket from arrival to closing."""

    def __init__(self) -> None:
        super().__init__()
        self._ticket: TicketView | None = None
        self._input: TicketInput | None = None
        self._mcp = McpTools()
        self._reopen_requested = False
        self._early_comments: list[Comment] = []
        """Comments that arrive before the ticket is classified (its view does not exist yet)."""
        self._early_dropped = 0

    @workflow.run
    async def run(self, ticket: TicketInput) -> TicketView:
        self._input = ticket
        async with self.steps.plan(STEPS):
            found = classify(f"{ticket.subject}\n{ticket.body}")
            fallback = None
            if workflow.patched(CLASSIFY_PATCH):
                found, fallback = await self._classify(ticket, found)
            view = self._ticket = TicketView(
                ticket_id=ticket.ticket_id,
                customer_email=ticket.customer_email,
                subject=ticket.subject,
                ticket_type=found.ticket_type,
                priority=found.priority,
                state="open",
                classified_by="rules (LLM fallback)" if fallback else found.method,
                classification_fallback=fallback,
                routing_path=["classifier", found.ticket_type],
            )
            view.comments.extend(self._early_comments)
            view.comments_dropped = self._early_dropped
            self._publish()
            await self.steps.run_here("look up", lambda: self._look_up(view), describe=_lookups_outcome)
            if found.escalation_triggers:
                await self._escalate(f"trigger words: {', '.join(dict.fromkeys(found.escalation_triggers))}")
            elif view.priority == "CRITICAL" or (view.customer_tier == "premium" and view.priority == "HIGH"):
                await self._escalate(f"{view.priority} priority for a {view.customer_tier or 'unknown'}-tier customer")

            while True:
                await self._first_response()
                await workflow.wait_condition(lambda: view.state == "resolved")
                assert view.resolved_at is not None
                window = view.resolved_at + REOPEN_WINDOW - workflow.now()
                try:
                    await workflow.wait_condition(lambda: self._reopen_requested, timeout=max(window, timedelta(0)))
                except TimeoutError:
                    break
            view.state = "closed"
            view.routing_path.append("closed")
            self._publish()
            # Updates accepted just before closing finish before the run returns.
            await workflow.wait_condition(workflow.all_handlers_finished)
        return view

    async def _classify(self, ticket: TicketInput, rules: Classification) -> tuple[Classification, str | None]:
        """Step ``classify``: the ``classify_ticket`` activity's answer, and why the rules
        gave it although a model is configured (the activity's declared fallback, or the
        activity itself failing for good: the rules computed here then answer).

        It runs on the LLM task queue at the priority the rules estimate, so urgent
        tickets are classified first when the model's queue is backed up."""
        try:
            found = await self.steps.run(
                "classify",
                TicketClassifier.classify_ticket,
                ClassifyTicketInput(ticket_id=ticket.ticket_id, text=f"{ticket.subject}\n{ticket.body}"),
                options=ActivityOptions(
                    **LLM_PASS,
                    task_queue=llm_task_queue(workflow.info().task_queue),
                    priority=task_priority(rules.priority),
                ),
                describe=lambda found: f"{found.ticket_type}, {found.priority} by {found.method}",
            )
        except ActivityError as failure:
            return rules, outlived_failure(failure)
        return found, found.fallback

    async def _first_response(self) -> None:
        """Wait for an assignment; each SLA that runs out first escalates the ticket."""
        view = self._view()
        while view.state == "open":
            try:
                await workflow.wait_condition(lambda: view.state != "open", timeout=self._sla())
            except TimeoutError:
                before = view.priority
                await self._escalate(f"no response within the {before} SLA ({self._sla()})")
                if before == "CRITICAL":
                    # Nothing is higher: the page went out; wait for a person without paging again.
                    await workflow.wait_condition(lambda: view.state != "open")

    def _sla(self) -> timedelta:
        assert self._input is not None
        return self._input.sla(self._view().priority)

    async def _look_up(self, view: TicketView) -> list[Lookup]:
        """Step ``look up``: the customer's tier, then what the ticket's type needs."""
        view.routing_path.append("lookups")
        tier = await self._lookup(
            "customer tier", "database", f"SELECT tier FROM customers WHERE email = '{view.customer_email}'"
        )
        if tier.result is not None:
            match = re.search(r"'tier': '(\w+)'", tier.result)
            view.customer_tier = match.group(1) if match else "unknown"
        for what, server, query in LOOKUPS[view.ticket_type]:
            await self._lookup(what, server, query)
        return view.lookups

    async def _lookup(self, what: str, server: str, query: str) -> Lookup:
        """One MCP lookup; a failure is recorded on the ticket, never fatal to it."""
        view = self._view()
        options = mcp_call(MCP_BUDGETS[server], attempts=2)
        options["priority"] = task_priority(view.priority)
        tool = "search_files" if query == "logs" else "read_query"
        lookup = Lookup(what=what, server=server, tool=tool)
        try:
            if query == "logs":
                root = await self._mcp.call(server, "list_allowed_directories", {}, options)
                arguments = {"path": root.text.splitlines()[-1].strip(), "pattern": "**/*.log"}
            else:
                arguments = {"query": query}
            lookup.result = (await self._mcp.call(server, tool, arguments, options)).text
        except (ActivityError, ApplicationError) as failure:
            lookup.error = outlived_failure(failure)
        view.lookups.append(lookup)
        return lookup

    async def _escalate(self, reason: str) -> None:
        view = self._view()
        before = view.priority
        view.priority = raised(before)
        view.routing_path.append("escalation")
        self._publish()
        notice = EscalationNotice(
            ticket_id=view.ticket_id,
            ticket_type=view.ticket_type,
            subject=view.subject,
            reason=reason,
            priority=view.priority,
            workflow_id=workflow.info().workflow_id,
        )
        try:
            notified = await workflow.execute_activity(
                notify_escalation, notice, **ActivityOptions(**NOTIFY, priority=task_priority(view.priority))
            )
        except ActivityError as failure:
            notified = f"not notified ({outlived_failure(failure)})"
        view.escalations.append(
            Escalation(
                reason=reason, at=workflow.now(), from_priority=before, to_priority=view.priority, notified=notified
            )
        )

    def _view(self) -> TicketView:
        assert self._ticket is not None
        return self._ticket

    def _publish(self) -> None:
        view = self._view()
        workflow.upsert_search_attributes(
            [
                TICKET_TYPE.value_set(view.ticket_type),
                TICKET_PRIORITY.value_set(view.priority),
                TICKET_STATE.value_set(view.state),
                TICKET_ASSIGNEE.value_set(view.assignee) if view.assignee else TICKET_ASSIGNEE.value_unset(),
            ]
        )

    @workflow.update
    async def assign(self, request: AssignRequest) -> TicketView:
        """Give the ticket to an agent (the first response); returns the ticket."""
        view = self._view()
        view.assignee = request.agent
        view.state = "assigned"
        self._publish()
        return view

    @assign.validator
    def _check_assign(self, request: AssignRequest) -> None:
        state = self._ticket.state if self._ticket else "new"
        if state not in ("open", "assigned"):
            raise refusal(
                f"ticket is {state}: it cannot be assigned" + ("; reopen it first" if state == "resolved" else "")
            )

    @workflow.update
    async def resolve(self, request: ResolveRequest) -> TicketView:
        """Record the resolution; the ticket may be reopened for 7 days."""
        view = self._view()
        view.resolution = request.resolution
        view.resolved_at = workflow.now()
        view.state = "resolved"
        view.routing_path.append("resolved")
        self._reopen_requested = False
        self._publish()
        return view

    @resolve.validator
    def _check_resolve(self, request: ResolveRequest) -> None:
        state = self._ticket.state if self._ticket else "new"
        if state != "assigned":
            raise refusal(
                f"ticket is {state}: only an assigned ticket can be resolved"
                + (" (assign it first)" if state == "open" else "")
            )

    @workflow.update
    async def reopen(self, request: ReopenRequest) -> TicketView:
        """Reopen a resolved ticket; it goes back to its assignee."""
        view = self._view()
        view.state = "assigned" if view.assignee else "open"
        view.reopened += 1
        self._keep(Comment(author="reopen", text=request.reason))
        view.routing_path.append("reopened")
        self._reopen_requested = True
        self._publish()
        return view

    @reopen.validator
    def _check_reopen(self, request: ReopenRequest) -> None:
        view = self._ticket
        if view is None or view.state != "resolved" or view.resolved_at is None:
            raise refusal(f"ticket is {view.state if view else 'new'}: only a resolved ticket can be reopened")
        if workflow.now() - view.resolved_at > REOPEN_WINDOW:
            raise refusal(f"ticket was resolved more than {REOPEN_WINDOW.days} days ago: open a new one")

    @workflow.signal
    def comment(self, note: Comment) -> None:
        """Add a comment (any time before the ticket closes)."""
        self._keep(note)

    def _keep(self, note: Comment) -> None:
        """Keep ``note`` unless the ticket holds :data:`MAX_COMMENTS` already (its view must
        stay a bounded payload); then only count it."""
        kept = self._ticket.comments if self._ticket is not None else self._early_comments
        if len(kept) < MAX_COMMENTS:
            kept.append(note)
        elif self._ticket is not None:
            self._ticket.comments_dropped += 1
        else:
            self._early_dropped += 1

    @workflow.query
    def status(self) -> TicketStatus:
        """The ticket, and how far along it is: its steps (classify, look up), then what
        people do (assigned, resolved), which its progress counts too."""
        status = self.steps.status()
        view = self._ticket
        by_people = {"assigned": 1, "resolved": 2, "closed": 2}.get(view.state, 0) if view else 0
        waiting = f"{view.state}, {view.priority}" if view else None
        if view and view.escalations:
            waiting = f"{waiting}, escalated ({view.escalations[-1].reason})"
        return TicketStatus(
            **dict(status)
            | {
                "state": "completed" if view and view.state == "closed" else status.state,
                "current_step": status.current_step or waiting,
                "done": status.done + by_people,
                "total": len(STEPS) + 2,
            },
            ticket=view,
        )


def _lookups_outcome(lookups: list[Lookup]) -> str:
    failed = sum(lookup.error is not None for lookup in lookups)
    return f"{len(lookups)} lookups" + (f", {failed} failed" if failed else "")
