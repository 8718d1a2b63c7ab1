"""What every entry point does with a run: start, describe, follow, control, list.

The ``saga`` CLI and the HTTP API are two faces of these functions, so both start a
family the same way (its workflow id and reuse policy from the catalog), describe a run
the same way and report failures as the same chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.client import (
    WorkflowExecutionStatus as ExecutionStatus,
)
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from sagaworks import Family, ProgressStatus, error_kind, registry
from sagaworks.client.connection import TASK_QUEUE, ui_url

QUERY_TIMEOUT = timedelta(seconds=10)
"""How long a ``status`` query may wait for a worker before the run is described without it."""


RUN_STATES: tuple[str, ...] = tuple(state.name for state in ExecutionStatus)
"""What a run's status can be: RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED..."""


class RunConflict(Exception):
    """A start refused because the family's workflow id is taken under its reuse policy."""


class RunAlreadyClosed(Exception):
    """A control (cancel, pause, resume) sent to a run that has already closed."""

    def __init__(self, workflow_id: str, status: str) -> None:
        super().__init__(f"{workflow_id} has already closed ({status}); nothing to do")
        self.workflow_id = workflow_id
        self.status = status


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for a pydantic model or a list of them (anything else as it is)."""
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def status_name(status: ExecutionStatus | int | None) -> str:
    """``RUNNING``, ``COMPLETED``, ``FAILED``, ``CANCELED``, ``TERMINATED``..."""
    if status is None:
        return "UNKNOWN"
    return ExecutionStatus(int(status)).name


async def start_run(
    client: Client,
    family: Family[Any],
    arg: BaseModel,
    *,
    task_queue: str = TASK_QUEUE,
) -> WorkflowHandle[Any, Any]:
    """Start a run of ``family`` with a validated input; raises :class:`RunConflict`, or
    :class:`~sagaworks.RunRefused` for an input the configuration refuses."""
    family.check_allowed(arg)
    workflow_id = family.workflow_id(arg)
    try:
        return await client.start_workflow(
            family.workflow_type,
            arg,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=family.id_reuse_policy,
        )
    except WorkflowAlreadyStartedError:
        raise RunConflict(family.conflict_message(arg)) from None


def failure_chain(error: BaseException) -> list[dict[str, Any]]:
    """A failure and its causes, outermost first, as JSON data (type, message, details)."""
    chain: list[dict[str, Any]] = []
    current: BaseException | None = error
    while current is not None:
        entry: dict[str, Any] = {"message": getattr(current, "message", str(current))}
        if isinstance(current, ApplicationError):
            # An ApplicationError raised without type= comes back with none: its class names it.
            entry["type"] = current.type or type(current).__name__
            if current.details:
                entry["details"] = [to_jsonable(d) for d in current.details]
        else:
            entry["type"] = error_kind(current)
        chain.append(entry)
        current = current.__cause__
    return chain


def failure_lines(chain: list[dict[str, Any]]) -> list[str]:
    """A failure chain as text: each cause indented under the last, then what was undone."""
    lines = [f"{'  ' * depth}{entry['type']}: {entry['message']}" for depth, entry in enumerate(chain)]
    for entry in chain:
        for detail in entry.get("details", []):
            for record in detail.get("compensations", []) if isinstance(detail, dict) else []:
                lines.append(f"undo {record['step']}: {record['outcome']}")
    return lines


async def query_progress(
    handle: WorkflowHandle[Any, Any], result_type: type | None = ProgressStatus, *, timeout: timedelta = QUERY_TIMEOUT
) -> Any:
    """The run's ``status`` query, or why it could not be answered (no worker, closed).

    With ``result_type=None`` the whole answer comes back as JSON data, the family's own
    fields included. A run no worker polls answers after ``timeout``.
    """
    try:
        return await handle.query("status", result_type=result_type, rpc_timeout=timeout)
    except (RPCError, FailureError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as query_error:
        return f"unavailable: {getattr(query_error, 'message', None) or query_error}"


async def describe_run(client: Client, workflow_id: str, *, query_timeout: timedelta = QUERY_TIMEOUT) -> dict[str, Any]:
    """State of a run: ids, type, family, status, times, UI link and live progress.

    Progress is the full ``status`` query answer (the family's own fields included), or
    why there is none (after ``query_timeout`` when no worker polls).
    """
    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    family = registry().family_of_type(description.workflow_type)
    progress = await query_progress(handle, result_type=None, timeout=query_timeout)
    return {
        "workflow_id": workflow_id,
        "run_id": description.run_id,
        "type": description.workflow_type,
        "family": family.name if family else None,
        "status": status_name(description.status),
        "started": description.start_time,
        "closed": description.close_time,
        "ui": ui_url(client, workflow_id, description.run_id),
        "progress": progress,
    }


@dataclass
class Outcome:
    """How a run ended (or that it has not yet)."""

    workflow_id: str
    status: str
    result: Any = None
    failure: list[dict[str, Any]] | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"workflow_id": self.workflow_id, "status": self.status}
        if self.status == "COMPLETED":
            data["result"] = to_jsonable(self.result)
        elif self.failure is not None:
            data["failure"] = self.failure
        return data


async def run_outcome(handle: WorkflowHandle[Any, Any], *, wait: bool = True) -> Outcome:
    """The run's result or failure chain; with ``wait=False`` a running run says RUNNING."""
    if not wait:
        description = await handle.describe()
        if description.status == ExecutionStatus.RUNNING:
            return Outcome(handle.id, "RUNNING")
    try:
        result = await handle.result()
    except WorkflowFailureError as failure:
        description = await handle.describe()
        return Outcome(handle.id, status_name(description.status), failure=failure_chain(failure.cause))
    return Outcome(handle.id, "COMPLETED", result=result)


async def _running_handle(client: Client, workflow_id: str) -> WorkflowHandle[Any, Any]:
    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    if description.status != ExecutionStatus.RUNNING:
        raise RunAlreadyClosed(workflow_id, status_name(description.status))
    return handle


async def cancel_run(client: Client, workflow_id: str) -> None:
    """Ask a running run to cancel (it compensates and ends CANCELED)."""
    await (await _running_handle(client, workflow_id)).cancel()


async def signal_run(client: Client, workflow_id: str, signal: str, arg: Any = None) -> None:
    """Send ``signal`` (pause, resume...) to a running run."""
    handle = await _running_handle(client, workflow_id)
    if arg is None:
        await handle.signal(signal)
    else:
        await handle.signal(signal, arg)


async def update_run(client: Client, workflow_id: str, update: str, arg: Any = None) -> Any:
    """Run ``update`` (approve, reject, assign...) on a running run; returns its result."""
    handle = await _running_handle(client, workflow_id)
    if arg is None:
        return await handle.execute_update(update)
    return await handle.execute_update(update, arg)


def visibility_query(*, family: Family[Any] | None = None, status: str | None = None, query: str = "") -> str:
    """A visibility query listing runs of a family and/or status, ANDed with ``query``."""
    clauses = [f"({query})"] if query else []
    if family is not None:
        clauses.append(f"WorkflowType = '{family.workflow_type}'")
    if status is not None:
        clauses.append(f"ExecutionStatus = '{ExecutionStatus[status.upper()].name.title().replace('_', '')}'")
    return " AND ".join(clauses)


def summarize_execution(execution: Any) -> dict[str, Any]:
    """One row of a runs list (whole ids: they are copied into the next command)."""
    family = registry().family_of_type(execution.workflow_type)
    started: datetime | None = execution.start_time
    closed: datetime | None = execution.close_time
    return {
        "workflow_id": execution.id,
        "run_id": execution.run_id,
        "type": execution.workflow_type,
        "family": family.name if family else None,
        "status": status_name(execution.status),
        "started": started,
        "closed": closed,
    }


async def list_runs(client: Client, query: str = "", *, limit: int = 20) -> list[dict[str, Any]]:
    """Recent runs matching a visibility query, newest first."""
    return [summarize_execution(e) async for e in client.list_workflows(query or None, limit=limit)]


async def list_runs_page(
    client: Client, query: str = "", *, page_size: int = 20, page_token: bytes | None = None
) -> tuple[list[dict[str, Any]], bytes | None]:
    """One page of runs matching a visibility query, and the token of the next (None at the end)."""
    pages = client.list_workflows(query or None, page_size=page_size, next_page_token=page_token)
    await pages.fetch_next_page()
    return [summarize_execution(e) for e in pages.current_page or []], pages.next_page_token


def _status_of_visibility(value: Any) -> str:
    # Visibility groups name statuses in CamelCase ("ContinuedAsNew"); ours are CONTINUED_AS_NEW.
    return re.sub(r"(?<!^)(?=[A-Z])", "_", str(value)).upper()


async def count_runs(client: Client, family: Family[Any]) -> dict[str, int]:
    """How many runs of ``family`` visibility knows, per status (statuses with none left out)."""
    counted = await client.count_workflows(f"{visibility_query(family=family)} GROUP BY ExecutionStatus")
    return {_status_of_visibility(group.group_values[0]): group.count for group in counted.groups}
