"""Ticket classification by the worker's LLM, with the seed's rules as the offline default.

``classify_ticket`` runs on the rate-limited LLM task queue (``policies.llm_task_queue``).
Without a model configured (``SAGAWORKS_LLM_PROVIDER``, ``GROQ_API_KEY``: see
:func:`activities.llm.groq_settings_from_env`) it answers with the rules at once. With one,
the model's answer must validate as :class:`TicketLabels` (ChatGroq structured output):
an invalid answer is a retryable ``ModelError`` until the last attempt, a 429 waits for
its Retry-After, and once the activity fails for good the workflow keeps the rules'
classification and marks the ticket as a fallback.
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, Field
from temporalio import activity

from sagaworks.activities.liveness import keep_alive
from sagaworks.activities.llm import GroqSettings, StructuredChat, groq_settings_from_env
from sagaworks.contracts.support import (
    ESCALATION_TRIGGERS,
    PRIORITIES,
    Classification,
    ClassifyTicketInput,
    Priority,
    TicketType,
    classify,
)


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


class TicketClassifier:
    """Classifies tickets with ``chat`` (None: the seed's rules)."""

    def __init__(self, chat: StructuredChat[TicketLabels] | None = None) -> None:
        self._chat = chat

    @classmethod
    def for_model(cls, settings: GroqSettings | None) -> TicketClassifier:
        """A classifier on the Groq model ``settings`` names (None: the rules)."""
        return cls(StructuredChat(settings, TicketLabels) if settings else None)

    @classmethod
    def from_env(cls) -> TicketClassifier:
        """The classifier the worker's environment configures."""
        return cls.for_model(groq_settings_from_env())

    @activity.defn
    def classify_ticket(self, request: ClassifyTicketInput) -> Classification:
        """Type, priority and escalation triggers of a ticket, by the model or the rules."""
        rules = classify(request.text)
        if self._chat is None:
            return rules
        with keep_alive():
            labels = self._chat.ask(_PROMPT + request.text)
        return Classification(
            ticket_type=labels.ticket_type,
            priority=labels.priority,
            urgency_keywords=rules.urgency_keywords,
            escalation_triggers=labels.escalation_triggers,
            method=self._chat.name,
        )
