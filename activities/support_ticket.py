"""The support-ticket family's activities: classifying a ticket and telling someone it was
escalated. Lookups of the ticket's handlers are MCP tool calls (``activities/mcp_servers.py``).

``classify_ticket`` asks the model through the LLM gateway (:class:`sagaworks.LLM`, family
``support-ticket``: ``SAGAWORKS_LLM_SUPPORT_TICKET_*`` or the general ``SAGAWORKS_LLM_*``
configure it) with the keyword rules of ``contracts/support.py`` (``classify``) as its
declared offline fallback. Without a model the rules answer at once; with one, the answer
must validate as :class:`TicketLabels`. When the ``llm`` breaker is open, the budget is
spent past the step's deadline, the provider refuses the call or its answer is unusable,
the rules answer and the classification says why
(:attr:`Classification.fallback`); a 429 or a spent budget is waited out while the step's
deadline allows.

``notify_escalation`` POSTs the notice as JSON to ``SAGAWORKS_ESCALATION_WEBHOOK`` (read by
the worker: a Slack or pager webhook); without it the notice goes to the worker's log.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from typing import get_args

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sagaworks import LLM, ErrorClass, keep_alive
from sagaworks.contracts.support import (
    ESCALATION_TRIGGERS,
    PRIORITIES,
    Classification,
    ClassifyTicketInput,
    EscalationNotice,
    Priority,
    TicketType,
    classify,
)

FAMILY = "support-ticket"
"""The family's name to the LLM gateway."""
LABEL_TOKENS = 200
"""The longest answer the model may give (its completion tokens)."""
WEBHOOK_ENV = "SAGAWORKS_ESCALATION_WEBHOOK"

log = logging.getLogger("sagaworks.support")


class TicketLabels(BaseModel):
    """The structured answer the model must give."""

    ticket_type: TicketType
    priority: Priority
    escalation_triggers: list[str] = Field(default_factory=list, max_length=10)
    """Words of the ticket that call for escalation (a complaint, a manager, anger)."""


_PROMPT = f"""Classify this customer support ticket. Answer with one JSON object only:
{{"ticket_type": one of {list(get_args(TicketType))},
 "priority": one of {list(PRIORITIES)} (CRITICAL: an outage or an emergency; HIGH: important or
   blocking work; MEDIUM: a polite request; LOW: anything else),
 "escalation_triggers": the words of the ticket that call for a manager's attention (complaints,
   anger, threats to leave; e.g. {", ".join(p.split("|")[0] for p in ESCALATION_TRIGGERS)}), or []}}

Ticket:
"""


def _labels(answer: str) -> TicketLabels:
    """The model's answer as labels; ``ValueError`` (a ValidationError) when it is not one."""
    return TicketLabels.model_validate_json(answer.strip().removeprefix("```json").removesuffix("```"))


class TicketClassifier:
    """Classifies tickets through the LLM gateway ``llm`` (None: no model, the rules
    answer), the rules as its fallback."""

    def __init__(self, llm: LLM | None = None) -> None:
        self._llm = llm

    @activity.defn
    def classify_ticket(self, request: ClassifyTicketInput) -> Classification:
        """Type, priority and escalation triggers of a ticket, by the model or the rules."""
        rules = classify(request.text)
        if self._llm is None:
            return rules

        def parse(answer: str) -> Classification:
            labels = _labels(answer)
            return Classification(
                ticket_type=labels.ticket_type,
                priority=labels.priority,
                urgency_keywords=rules.urgency_keywords,
                escalation_triggers=labels.escalation_triggers,
            )

        with keep_alive():
            answer = self._llm.ask(
                FAMILY,
                _PROMPT + request.text,
                parse=parse,
                fallback=lambda: rules,
                max_tokens=LABEL_TOKENS,
                json_mode=True,
            )
        if answer.value is rules:
            return rules.model_copy(update={"fallback": answer.fallback})
        return answer.value.model_copy(update={"method": answer.provider})


@activity.defn
def notify_escalation(notice: EscalationNotice) -> str:
    """Send the escalation notice; returns where it went (``webhook <url>`` or ``log``).

    A refused request (4xx) is final; an unreachable webhook or a 5xx is retried.
    """
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        log.warning("ticket %s escalated to %s: %s", notice.ticket_id, notice.priority, notice.reason)
        return "log"
    request = urllib.request.Request(
        url, data=json.dumps(notice.model_dump()).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as refused:
        raise ApplicationError(
            f"escalation webhook answered {refused.code}", type=ErrorClass.EXTERNAL, non_retryable=refused.code < 500
        ) from refused
    except (urllib.error.URLError, TimeoutError) as unreachable:
        raise ApplicationError(
            f"escalation webhook unreachable: {unreachable}", type=ErrorClass.EXTERNAL
        ) from unreachable
    return f"webhook {url}"
