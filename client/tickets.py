"""Support-ticket queues: the visibility query on the tickets' search attributes.

``saga tickets`` and ``GET /api/tickets`` (and the console's ticket page) list queues
through these two functions, so a filter means the same in each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args

from pydantic import BaseModel
from temporalio.client import Client

from sagaworks.contracts.support import (
    PRIORITIES,
    TICKET_ASSIGNEE,
    TICKET_PRIORITY,
    TICKET_STATE,
    TICKET_TYPE,
    TicketState,
    TicketType,
)

TICKET_STATES: tuple[str, ...] = get_args(TicketState)
TICKET_TYPES: tuple[str, ...] = get_args(TicketType)
TICKET_WORKFLOW_TYPE = "SupportTicket"


class TicketFilterInvalid(ValueError):
    """A ticket filter outside its allowed values; ``field`` names the filter."""

    def __init__(self, field: str, value: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{field} {value}: expected one of {', '.join(allowed)}")
        self.field = field


class TicketRow(BaseModel):
    """One ticket of a queue, as its search attributes say."""

    workflow_id: str
    type: str | None
    priority: str | None
    state: str | None
    assignee: str | None
    started: datetime | None


def _checked(field: str, value: str | None, allowed: tuple[str, ...], normal: Any) -> str | None:
    if not value:
        return None
    if normal(value) not in allowed:
        raise TicketFilterInvalid(field, value, allowed)
    return normal(value)


def ticket_query(
    *,
    priority: str | None = None,
    state: str | None = None,
    ticket_type: str | None = None,
    assignee: str | None = None,
) -> str:
    """The visibility query of the tickets matching every filter given (any case for
    priority and state); raises :class:`TicketFilterInvalid` naming a filter whose value
    no ticket can have."""
    clauses = [f"WorkflowType = '{TICKET_WORKFLOW_TYPE}'"]
    for key, value in (
        (TICKET_PRIORITY, _checked("priority", priority, PRIORITIES, str.upper)),
        (TICKET_STATE, _checked("state", state, TICKET_STATES, str.lower)),
        (TICKET_TYPE, _checked("type", ticket_type, TICKET_TYPES, str.lower)),
        # A quote would end the string literal and a backslash escape its closing quote:
        # an assignee's name never holds either.
        (TICKET_ASSIGNEE, assignee.replace("'", "").replace("\\", "") if assignee else None),
    ):
        if value:
            clauses.append(f"{key.name} = '{value}'")
    return " AND ".join(clauses)


async def list_tickets(client: Client, query: str, *, limit: int = 50) -> list[TicketRow]:
    """The tickets a :func:`ticket_query` finds, newest first, with their search attributes."""
    rows = []
    async for execution in client.list_workflows(query, limit=limit):
        attributes = execution.typed_search_attributes
        rows.append(
            TicketRow(
                workflow_id=execution.id,
                type=attributes.get(TICKET_TYPE),
                priority=attributes.get(TICKET_PRIORITY),
                state=attributes.get(TICKET_STATE),
                assignee=attributes.get(TICKET_ASSIGNEE),
                started=execution.start_time,
            )
        )
    return rows
