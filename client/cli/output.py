"""How the ``saga`` command prints: consoles, JSON, outcomes and live progress.

Output that is not a terminal (a pipe, a file, CI, cron) is never wrapped or cut: messages,
paths, ids and JSON stay on their lines whatever ``COLUMNS`` says, so scripts can read them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Sequence
from datetime import datetime, timezone
from typing import Annotated, Any, TextIO, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from sagaworks.client.codec import EncryptionConfigError
from sagaworks.client.connection import ui_url
from sagaworks.client.runs import Outcome, failure_lines, query_progress, run_outcome, to_jsonable
from sagaworks import ProgressStatus

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
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
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
    print(json.dumps(to_jsonable(value), indent=2, default=str))


def short_time(value: datetime | None) -> str:
    """``2026-11-24 03:21:05`` in UTC; empty for None."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain aligned table: cells are never cut, so an id can be copied as printed."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


async def follow_progress(client: Client, workflow_id: str) -> None:
    """A live progress bar on stderr until the run closes (follows continue-as-new)."""
    handle = client.get_workflow_handle(workflow_id)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as progress:
        task = progress.add_task(workflow_id, total=None)
        while True:
            description = await handle.describe()
            status = await query_progress(handle)
            if isinstance(status, ProgressStatus):
                progress.update(
                    task,
                    total=status.total,
                    completed=status.done,
                    description=f"{workflow_id}: {status.state} {status.current_step or ''}",
                )
            if description.status != WorkflowExecutionStatus.RUNNING:
                return
            await asyncio.sleep(0.25)


def print_outcome(outcome: Outcome, *, as_json: bool, link: str | None) -> int:
    """Print a closed run's result or failure chain; the exit code (0 completed, else 1)."""
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
    link = ui_url(client, handle.id, handle.result_run_id)
    if not wait:
        if as_json:
            print_json({"workflow_id": handle.id, "run_id": handle.result_run_id, "ui": link})
        else:
            out.print(f"Started [bold]{handle.id}[/bold] (run {handle.result_run_id})\n  UI: {link}")
        return 0
    if not as_json:
        out.print(f"Started [bold]{handle.id}[/bold]\n  UI: {link}")
        await follow_progress(client, handle.id)
    return print_outcome(await run_outcome(handle), as_json=as_json, link=link)
