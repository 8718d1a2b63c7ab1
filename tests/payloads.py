"""Find every payload and failure inside a workflow history (for the encryption and secrets tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle, WorkflowHistory


def nested(message: Message, kind: type[Message]) -> Iterator[tuple[str, Message]]:
    """Every ``kind`` message inside ``message``, with the dotted path of fields that leads to it."""
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        assert field.message_type is not None  # a message field's descriptor has its type
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].type != FieldDescriptor.TYPE_MESSAGE:
                continue
            items = [(f"{field.name}.{key}", item) for key, item in value.items()]
        elif field.is_repeated:
            items = [(f"{field.name}.{index}", item) for index, item in enumerate(value)]
        else:
            items = [(field.name, value)]
        for path, item in items:
            if isinstance(item, kind):
                yield path, item
            yield from ((f"{path}.{inner}", found) for inner, found in nested(item, kind))


def history_payloads(history: WorkflowHistory) -> list[tuple[str, Payload]]:
    """Every payload of every event, with its path (``eventId:field.field...``)."""
    return [
        (f"{event.event_id}:{path}", payload)  # type: ignore[misc]  # nested() yields Payload for kind Payload
        for event in history.events
        for path, payload in nested(event, Payload)
    ]


def history_failures(history: WorkflowHistory) -> list[Failure]:
    """Every failure (and cause) of every event."""
    return [failure for event in history.events for _, failure in nested(event, Failure)]  # type: ignore[misc]  # nested() yields Failure for kind Failure


async def wait_for_event(
    handle: WorkflowHandle[Any, Any], matches: Callable[[HistoryEvent], bool], timeout: float = 60
) -> HistoryEvent:
    """The first event of the run's history that ``matches``, following the history as it grows."""

    async def follow() -> HistoryEvent:
        async for event in handle.fetch_history_events(wait_new_event=True):
            if matches(event):
                return event
        raise AssertionError(f"{handle.id} closed without the awaited event")

    return await asyncio.wait_for(follow(), timeout)
