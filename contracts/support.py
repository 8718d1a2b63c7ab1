"""Contracts of the ``support-ticket`` family: classification, routing, SLA and escalation.

The classification rules are keyword rules: patterns score each ticket
type, urgency words set the priority, and complaint/manager/unacceptable-style words are
escalation triggers. They are pure functions, so the workflow can apply them directly; with
an LLM configured on the worker, the ``classify_ticket`` activity asks it instead and the
rules are the fallback.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from temporalio.common import Priority as TaskPriority
from temporalio.common import SearchAttributeKey

from sagaworks import StepStatus, StrictModel, Text

TicketType = Literal["customer_service", "technical_support", "sales_inquiry", "data_analysis", "general_query"]
Priority = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
PRIORITIES: tuple[Priority, ...] = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
TicketState = Literal["open", "assigned", "resolved", "closed"]

TYPE_PATTERNS: dict[TicketType, tuple[str, ...]] = {
    "customer_service": (
        r"account|billing|payment|refund|cancel|subscription",
        r"order|shipping|delivery|tracking|return",
        r"login|password|access|locked",
    ),
    "technical_support": (
        r"error|bug|crash|broken|not working|issue",
        r"api|integration|connection|timeout",
        r"performance|slow|loading|response",
    ),
    "sales_inquiry": (
        r"price|cost|quote|demo|trial|purchase",
        r"features|comparison|upgrade|plan",
        r"contact sales|sales team|pricing",
    ),
    "data_analysis": (
        r"report|analytics|data|statistics|metrics",
        r"trend|analysis|forecast|prediction",
        r"dashboard|visualization|chart",
    ),
}
URGENCY_PATTERNS: tuple[tuple[str, Priority], ...] = (
    (r"urgent|emergency|critical|asap|immediately", "CRITICAL"),
    (r"important|priority|soon|quickly", "HIGH"),
    (r"please|when possible|sometime", "MEDIUM"),
)
ESCALATION_TRIGGERS = (
    r"complaint|frustrated|angry|disappointed",
    r"manager|supervisor|escalate",
    r"unacceptable|terrible|worst",
)

DEFAULT_SLA_MINUTES: dict[Priority, float] = {"CRITICAL": 15, "HIGH": 60, "MEDIUM": 240, "LOW": 1440}
"""Minutes to first response (an assignment) per priority."""
REOPEN_WINDOW = timedelta(days=7)
"""How long after its resolution a ticket may be reopened; then it closes."""

TICKET_TYPE = SearchAttributeKey.for_keyword("TicketType")
TICKET_PRIORITY = SearchAttributeKey.for_keyword("TicketPriority")
TICKET_STATE = SearchAttributeKey.for_keyword("TicketState")
TICKET_ASSIGNEE = SearchAttributeKey.for_keyword("TicketAssignee")
SEARCH_ATTRIBUTES = (TICKET_TYPE, TICKET_PRIORITY, TICKET_STATE, TICKET_ASSIGNEE)
"""Custom search attributes of tickets (all Keyword); the embedded server registers them."""

EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"


class TicketInput(StrictModel):
    """A new support ticket."""

    ticket_id: Text = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    customer_email: Text = Field(pattern=EMAIL, max_length=254)
    subject: Text = Field(min_length=1, max_length=200)
    body: Text = Field(default="", max_length=10_000)
    sla_minutes: dict[Priority, float] = Field(
        default_factory=lambda: dict(DEFAULT_SLA_MINUTES),
        description="Minutes to first response per priority; missing ones take the default.",
    )

    def sla(self, priority: Priority) -> timedelta:
        """The first-response deadline of ``priority``."""
        return timedelta(minutes=self.sla_minutes.get(priority, DEFAULT_SLA_MINUTES[priority]))


class Classification(BaseModel):
    """What the rules (or the LLM) read in a ticket."""

    ticket_type: TicketType
    priority: Priority
    urgency_keywords: list[str]
    escalation_triggers: list[str]
    method: str = "rules"
    """``rules``, or the model that classified (``groq:<model>``)."""
    fallback: str | None = None
    """Why the rules classified although a model is configured (the LLM gateway's breaker
    open, its budget spent, the model's answer unusable...); None otherwise."""


class ClassifyTicketInput(StrictModel):
    """What the ``classify_ticket`` activity reads: the ticket's subject and body."""

    ticket_id: str
    text: Text = Field(max_length=10_300)


def task_priority(priority: Priority) -> TaskPriority:
    """The task-queue priority of a ticket's activities: CRITICAL 1 (dispatched first),
    HIGH 2, MEDIUM 3 (Temporal's default), LOW 4."""
    return TaskPriority(priority_key=len(PRIORITIES) - PRIORITIES.index(priority))


def classify(text: str) -> Classification:
    """The keyword rules: the best-scoring type, the highest urgency, any trigger words."""
    lowered = text.lower()
    scores = {kind: sum(len(re.findall(p, lowered)) for p in patterns) for kind, patterns in TYPE_PATTERNS.items()}
    best = max(scores, key=lambda kind: scores[kind])
    priority: Priority = "LOW"
    keywords: list[str] = []
    for pattern, level in URGENCY_PATTERNS:
        found = re.findall(pattern, lowered)
        keywords += found
        if found and PRIORITIES.index(level) > PRIORITIES.index(priority):
            priority = level
    triggers = [word for pattern in ESCALATION_TRIGGERS for word in re.findall(pattern, lowered)]
    return Classification(
        ticket_type=best if scores[best] > 0 else "general_query",
        priority=priority,
        urgency_keywords=keywords,
        escalation_triggers=triggers,
    )


def raised(priority: Priority) -> Priority:
    """One level up (CRITICAL stays CRITICAL)."""
    return PRIORITIES[min(PRIORITIES.index(priority) + 1, len(PRIORITIES) - 1)]


class AssignRequest(StrictModel):
    agent: Text = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@ -]+$")


class ResolveRequest(StrictModel):
    resolution: Text = Field(min_length=1, max_length=5000)


class ReopenRequest(StrictModel):
    reason: Text = Field(min_length=1, max_length=2000)


MAX_COMMENTS = 30
"""The most comments a ticket keeps (a reopen's reason is one). Each is at most 5,000
characters (20 kB in UTF-8), so the ticket's view, which every update returns and the run
ends with, stays far under Temporal's 2 MiB payload limit; later comments are counted in
:attr:`TicketView.comments_dropped`, not kept (a signal cannot be refused)."""


class Comment(StrictModel):
    author: Text = Field(min_length=1, max_length=100)
    text: Text = Field(min_length=1, max_length=5000)


class Lookup(BaseModel):
    """One thing the type's handler looked up through MCP."""

    what: str
    server: str
    tool: str
    result: str | None = None
    error: str | None = None


class Escalation(BaseModel):
    """One escalation: why, when, the priority change and whether anyone was notified."""

    reason: str
    at: datetime
    from_priority: Priority
    to_priority: Priority
    notified: str


class EscalationNotice(StrictModel):
    """What the notify activity sends (to the webhook, or the log)."""

    ticket_id: str
    ticket_type: str
    subject: str
    reason: str
    priority: str
    workflow_id: str


class TicketView(BaseModel):
    """Everything known about a ticket; the status query and the result."""

    ticket_id: str
    customer_email: str
    subject: str
    ticket_type: TicketType
    priority: Priority
    state: TicketState
    classified_by: str = "rules"
    """``rules``, ``groq:<model>``, or ``rules (LLM fallback)`` when the model's
    classification failed (then ``classification_fallback`` says why)."""
    classification_fallback: str | None = None
    customer_tier: str | None = None
    assignee: str | None = None
    resolution: str | None = None
    resolved_at: datetime | None = None
    routing_path: list[str] = Field(default_factory=list)
    lookups: list[Lookup] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)
    """At most :data:`MAX_COMMENTS`, the first ones."""
    comments_dropped: int = 0
    """Comments received once :attr:`comments` held :data:`MAX_COMMENTS`."""
    reopened: int = 0


class TicketStatus(StepStatus):
    """The ticket's steps, its progress (classified, looked into, assigned, resolved) and
    the whole ticket."""

    ticket: TicketView | None
