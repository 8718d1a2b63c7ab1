"""Helpers of the query tests: start a query run, wait on its status."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle

from sagaworks.contracts.query import QueryInput, QueryResult, QueryStatus, query_workflow_id


async def start_query(
    client: Client, task_queue: str, question: str, **fields: Any
) -> WorkflowHandle[Any, QueryResult]:
    request = QueryInput(question=question, request_id=uuid.uuid4().hex[:12], **fields)
    return await client.start_workflow(
        "QueryWorkflow",
        request,
        id=query_workflow_id(request.request_id),
        task_queue=task_queue,
        result_type=QueryResult,
    )


async def wait_for_status(
    handle: WorkflowHandle[Any, Any], condition: Callable[[QueryStatus], bool], timeout: float = 60
) -> QueryStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = await handle.query("status", result_type=QueryStatus)
        if condition(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"status never matched; last: {status}")
        await asyncio.sleep(0.05)


def failure_chain(error: BaseException) -> list[BaseException]:
    chain = []
    current: BaseException | None = error
    while current is not None:
        chain.append(current)
        current = current.__cause__
    return chain


def dead_url() -> str:
    """A local URL nothing listens on (an agent that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"
