"""How the ``saga`` command prints: consoles, JSON, outcomes and live progress.

Output that is not a terminal (a pipe, a file, CI, cron) is never wrapped or cut: messages,
paths, ids and JSON stay on their lines whatever ``COLUMNS`` says, so scripts can read them.

Importing it is cheap (no Temporal client, no family): ``saga --help`` and ``saga catalog``
start on it, so what a command needs to talk to Temporal is imported when it runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TextIO, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from sagaworks.client.runs import Outcome

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
WorkflowId = Annotated[str, typer.Argument(metavar="WORKFLOW_ID", help="Workflow id.", show_default=False)]

# Wide enough that rich never wraps a line written to a pipe or a file.
_UNWRAPPED_WIDTH = 100_000


def _console(stream: TextIO, *, stderr: bool) -> Console:
    if stream.isatty():
        return Console(stderr=stderr, soft_wrap=True)
    return Console(stderr=stderr, soft_wrap=True, width=_UNWRAPPED_WIDTH, no_color=True, highlight=False)


out = _console(sys.stdout, stderr=False)
err = _console(sys.stderr, stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` to stderr; return the exit to raise."""
    err.print(message, markup=False)
    return typer.Exit(code)


def run_async(coro: Awaitable[T]) -> T:
    """Run a coroutine; Temporal being unreachable is a one-line message, exit 1."""
    from temporalio.service import RPCError

    from sagaworks.client.codec import EncryptionConfigError

    try:
        return asyncio.run(coro)  # type: ignore[arg-type]  # every command passes a coroutine
    except EncryptionConfigError as unusable:
        raise fail(f"encryption settings: {unusable}", 2) from None
    except RPCError as rpc_error:
        raise fail(f"Temporal: {rpc_error.message}") from None
    except RuntimeError as runtime_error:
        if "connect" in str(runtime_error).lower():
            raise fail(f"{runtime_error}\nIs Temporal running? Try `saga dev up`.") from None
        raise


def print_json(value: Any) -> None:
    """JSON on stdout (models dumped; datetimes as ISO text)."""
    from sagaworks.client.runs import to_jsonable

    print(json.dumps(to_jsonable(value), indent=2, default=str))


def short_time(value: datetime | None) -> str:
    """``2026-11-24 03:21:05`` in UTC; empty for None."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain aligned table: cells are never cut, so an id can be copied as printed."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


def node_update_line(update: dict[str, Any]) -> str:
    """One node's update of a graph run's status (``sagaworks.langgraph``), as a line."""
    line = f"  {update.get('node')}: {json.dumps(update.get('update'), default=str)}"
    if update.get("fallback"):
        line += f"  (ran {update['fallback']}: breaker {update.get('breaker')} open)"
    return line


async def follow_progress(client: Client, workflow_id: str) -> None:
    """A live progress bar on stderr until the run closes (follows continue-as-new); a
    graph run's node updates are printed above it as they come."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from temporalio.client import WorkflowExecutionStatus

    from sagaworks import ProgressStatus
    from sagaworks.client.runs import query_progress

    handle = client.get_workflow_handle(workflow_id)
    shown = 0
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as progress:
        task = progress.add_task(workflow_id, total=None)
        while True:
            description = await handle.describe()
            answer = await query_progress(handle, result_type=None)
            if isinstance(answer, dict):
                status = ProgressStatus.model_validate(answer)
                progress.update(
                    task,
                    total=status.total,
                    completed=status.done,
                    description=f"{workflow_id}: {status.state} {status.current_step or ''}",
                )
                updates = answer.get("updates")
                if isinstance(updates, list):
                    for update in updates[shown:]:
                        if isinstance(update, dict) and "node" in update:
                            progress.console.print(node_update_line(update), markup=False, highlight=False)
                    shown = len(updates)
            if description.status != WorkflowExecutionStatus.RUNNING:
                return
            await asyncio.sleep(0.25)


def print_outcome(outcome: Outcome, *, as_json: bool, link: str | None) -> int:
    """Print a closed run's result or failure chain; the exit code (0 completed, else 1)."""
    from sagaworks.client.runs import failure_lines, to_jsonable

    if as_json:
        print_json({**outcome.as_json(), "ui": link})
        return 0 if outcome.status == "COMPLETED" else 1
    if outcome.status == "COMPLETED":
        out.print(f"[green]{outcome.workflow_id} COMPLETED[/green]")
        out.print_json(data=to_jsonable(outcome.result))
        return 0
    out.print(f"[red]{outcome.workflow_id} {outcome.status}[/red]")
    for line in failure_lines(outcome.failure or []):
        out.print(f"  {line}", markup=False)
    return 1


async def report_started(client: Client, handle: WorkflowHandle[Any, Any], *, wait: bool, as_json: bool) -> int:
    """Say a run started (id, run id, UI link); with ``wait``, follow it and print how it ended."""
    from sagaworks.client.connection import ui_url
    from sagaworks.client.runs import run_outcome
    from sagaworks.client.workers import say_while_no_worker

    link = ui_url(client, handle.id, handle.result_run_id)
    if not wait:
        if as_json:
            print_json({"workflow_id": handle.id, "run_id": handle.result_run_id, "ui": link})
        else:
            out.print(f"Started [bold]{handle.id}[/bold] (run {handle.result_run_id})\n  UI: {link}")
        return 0
    if not as_json:
        out.print(f"Started [bold]{handle.id}[/bold]\n  UI: {link}")
    task_queue = (await handle.describe()).task_queue
    # A run no worker polls for would wait in silence: say so (on stderr) and keep waiting.
    watch = asyncio.create_task(say_while_no_worker(client, task_queue, lambda line: err.print(line, markup=False)))
    try:
        if not as_json:
            await follow_progress(client, handle.id)
        outcome = await run_outcome(handle)
    finally:
        watch.cancel()
    return print_outcome(outcome, as_json=as_json, link=link)
