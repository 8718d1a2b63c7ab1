"""The ``saga`` command: start, watch, control and replay workflows on Temporal."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from client import devserver
from client.connection import DEFAULT_ADDRESS, TASK_QUEUE, connect, ui_url
from client.observability import configure_logging
from client.replay import fetch_history, history_files, load_history, replay
from contracts.common import ProgressStatus
from contracts.documents import BatchInput, DocumentInput, document_id_for, document_workflow_id
from contracts.orders import OrderInput, order_workflow_id

app = typer.Typer(
    help="sagaworks: start, watch, control and replay durable workflows on Temporal.\n\n"
    "Connection settings come from Temporal's envconfig (TEMPORAL_ADDRESS, "
    "TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_PROFILE).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
run_app = typer.Typer(help="Start a workflow of the catalog.", no_args_is_help=True)
dev_app = typer.Typer(help="The embedded Temporal server and a worker, in the background.", no_args_is_help=True)
app.add_typer(run_app, name="run")
app.add_typer(dev_app, name="dev")

out = Console(soft_wrap=True)
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
WaitFlag = Annotated[bool, typer.Option("--wait", help="Show live progress and wait for the result.")]
WorkflowId = Annotated[str, typer.Argument(help="Workflow id.")]

T = TypeVar("T")


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except RPCError as rpc_error:
        err.print(f"[red]Temporal: {rpc_error.message}[/red]")
        raise typer.Exit(1) from None
    except RuntimeError as runtime_error:
        if "connect" in str(runtime_error).lower():
            err.print(f"[red]{runtime_error}[/red]\nIs Temporal running? Try `saga dev up`.")
            raise typer.Exit(1) from None
        raise


def _to_jsonable(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _print_json(value: Any) -> None:
    print(json.dumps(_to_jsonable(value), indent=2, default=str))


def _failure_chain(error: BaseException) -> list[dict[str, Any]]:
    chain: list[dict[str, Any]] = []
    current: BaseException | None = error
    while current is not None:
        entry: dict[str, Any] = {"message": getattr(current, "message", str(current))}
        if isinstance(current, ApplicationError):
            entry["type"] = current.type
            if current.details:
                entry["details"] = [_to_jsonable(d) for d in current.details]
        else:
            entry["type"] = type(current).__name__
        chain.append(entry)
        current = current.__cause__
    return chain


async def _progress_until_done(client: Client, workflow_id: str) -> None:
    # No run id: follow the workflow across continue-as-new.
    handle = client.get_workflow_handle(workflow_id)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task(handle.id, total=None)
        while True:
            description = await handle.describe()
            try:
                status = await handle.query("status", result_type=ProgressStatus)
                progress.update(
                    task,
                    total=status.total,
                    completed=status.done,
                    description=f"{handle.id}: {status.state} {status.current_step or ''}",
                )
            except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
                pass  # no worker or no status query: keep showing the last known progress
            if description.status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
                return
            await asyncio.sleep(0.25)


async def _report(client: Client, handle: WorkflowHandle[Any, Any], *, wait: bool, as_json: bool) -> int:
    link = ui_url(client, handle.id, handle.result_run_id)
    if not wait:
        if as_json:
            _print_json({"workflow_id": handle.id, "run_id": handle.result_run_id, "ui": link})
        else:
            out.print(f"Started [bold]{handle.id}[/bold] (run {handle.result_run_id})\n  UI: {link}")
        return 0
    if not as_json:
        out.print(f"Started [bold]{handle.id}[/bold]\n  UI: {link}")
        await _progress_until_done(client, handle.id)
    return await _print_outcome(handle, as_json=as_json, link=link)


async def _print_outcome(handle: WorkflowHandle[Any, Any], *, as_json: bool, link: str | None = None) -> int:
    try:
        result = await handle.result()
    except WorkflowFailureError as failure:
        description = await handle.describe()
        status = description.status.name if description.status else "UNKNOWN"
        chain = _failure_chain(failure.cause)
        if as_json:
            _print_json({"workflow_id": handle.id, "status": status, "failure": chain, "ui": link})
        else:
            out.print(f"[red]{handle.id} {status}[/red]")
            for depth, entry in enumerate(chain):
                out.print(f"{'  ' * (depth + 1)}{entry['type']}: {entry['message']}")
            for entry in chain:
                for detail in entry.get("details", []):
                    for record in detail.get("compensations", []) if isinstance(detail, dict) else []:
                        out.print(f"  undo {record['step']}: {record['outcome']}")
        return 1
    if as_json:
        _print_json({"workflow_id": handle.id, "status": "COMPLETED", "result": result, "ui": link})
    else:
        out.print(f"[green]{handle.id} COMPLETED[/green]")
        out.print_json(data=_to_jsonable(result))
    return 0


@run_app.command("order")
def run_order(
    input_file: Annotated[
        Path, typer.Option("--input", "-i", exists=True, dir_okay=False, help="JSON file holding an order.")
    ],
    wait: WaitFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Start an order-fulfilment saga (one per order id, ever)."""
    try:
        order = OrderInput.model_validate_json(input_file.read_bytes())
    except ValidationError as invalid:
        err.print(f"[red]{input_file}: invalid order[/red]\n{invalid}")
        raise typer.Exit(2) from None

    workflow_id = order_workflow_id(order.order_id)
    already = f"order {order.order_id} was already submitted (see `saga status {workflow_id}`)"
    raise typer.Exit(
        _run(_start("OrderFulfillmentSaga", order, workflow_id, WorkflowIDReusePolicy.REJECT_DUPLICATE, already, wait, as_json))
    )


@run_app.command("document")
def run_document(
    path: Annotated[Path, typer.Argument(help="A document or a folder of documents (a batch), as the worker sees it.")],
    chunk_size: Annotated[int, typer.Option(min=200, max=20_000, help="Characters per chunk.")] = 2000,
    max_in_flight: Annotated[int, typer.Option(min=1, max=100, help="Batch: documents at once.")] = 4,
    wait: WaitFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Extract the concepts of a document (.txt .md .html .pdf .docx) or of every one in a folder."""
    absolute = str(path.absolute())  # not resolved: the worker checks symlinks against its roots
    try:
        arg: BaseModel = (
            BatchInput(folder=absolute, max_in_flight=max_in_flight, chunk_size=chunk_size)
            if path.is_dir()
            else DocumentInput(path=absolute, chunk_size=chunk_size)
        )
    except ValidationError as invalid:
        err.print(f"[red]{path}: invalid path[/red]\n{invalid}")
        raise typer.Exit(2) from None
    if isinstance(arg, BatchInput):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        workflow_id = f"batch-{document_id_for(absolute)}-{stamp}"
        start = _start("DocumentBatch", arg, workflow_id, WorkflowIDReusePolicy.REJECT_DUPLICATE, "", wait, as_json)
    else:
        document = arg
        workflow_id = document_workflow_id(document_id_for(absolute))
        busy = f"{absolute} is being processed right now (see `saga status {workflow_id}`)"
        start = _start("DocumentPipeline", document, workflow_id, WorkflowIDReusePolicy.ALLOW_DUPLICATE, busy, wait, as_json)
    raise typer.Exit(_run(start))


async def _start(
    workflow: str,
    arg: BaseModel,
    workflow_id: str,
    reuse: WorkflowIDReusePolicy,
    conflict_message: str,
    wait: bool,
    as_json: bool,
) -> int:
    client = await connect()
    try:
        handle = await client.start_workflow(workflow, arg, id=workflow_id, task_queue=TASK_QUEUE, id_reuse_policy=reuse)
    except WorkflowAlreadyStartedError:
        err.print(f"[red]{conflict_message or f'{workflow_id} already exists'}[/red]")
        return 1
    return await _report(client, handle, wait=wait, as_json=as_json)


@app.command()
def status(workflow_id: WorkflowId, as_json: JsonFlag = False) -> None:
    """Show a workflow's state and, while a worker answers, its live progress."""

    async def show() -> None:
        client = await connect()
        handle = client.get_workflow_handle(workflow_id)
        description = await handle.describe()
        info: dict[str, Any] = {
            "workflow_id": workflow_id,
            "run_id": description.run_id,
            "type": description.workflow_type,
            "status": description.status.name if description.status else None,
            "started": description.start_time,
            "closed": description.close_time,
            "ui": ui_url(client, workflow_id, description.run_id),
        }
        try:
            info["progress"] = await handle.query("status")
        except (RPCError, FailureError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as query_error:
            info["progress"] = f"unavailable: {query_error}"
        if as_json:
            _print_json(info)
            return
        for key, value in info.items():
            if key != "progress":
                out.print(f"[bold]{key}[/bold]: {value}")
        out.print("[bold]progress[/bold]:")
        out.print_json(data=info["progress"]) if isinstance(info["progress"], dict) else out.print(info["progress"])

    _run(show())


@app.command()
def result(workflow_id: WorkflowId, as_json: JsonFlag = False) -> None:
    """Wait for a workflow's result (exit 1 if it failed, with the failure chain)."""

    async def show() -> int:
        client = await connect()
        handle = client.get_workflow_handle(workflow_id)
        return await _print_outcome(handle, as_json=as_json, link=ui_url(client, workflow_id))

    raise typer.Exit(_run(show()))


def _signal_command(name: str, doc: str) -> Callable[[str], None]:
    def command(workflow_id: WorkflowId) -> None:
        async def send() -> None:
            client = await connect()
            await client.get_workflow_handle(workflow_id).signal(name)
            out.print(f"{name} sent to {workflow_id}")

        _run(send())

    command.__doc__ = doc
    return command


app.command("pause")(_signal_command("pause", "Hold a saga before its next step."))
app.command("resume")(_signal_command("resume", "Let a paused saga go on."))


@app.command()
def cancel(workflow_id: WorkflowId) -> None:
    """Cancel a workflow: it compensates what it did and ends CANCELED."""

    async def send() -> None:
        client = await connect()
        await client.get_workflow_handle(workflow_id).cancel()
        out.print(f"cancellation requested for {workflow_id}")

    _run(send())


@app.command("list")
def list_workflows(
    query: Annotated[str, typer.Option(help="Visibility query, e.g. \"ExecutionStatus='Running'\".")] = "",
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List recent workflows, newest first."""

    async def show() -> None:
        client = await connect()
        rows = []
        async for execution in client.list_workflows(query or None, limit=limit):
            rows.append(
                {
                    "workflow_id": execution.id,
                    "type": execution.workflow_type,
                    "status": execution.status.name if execution.status else None,
                    "started": execution.start_time,
                    "closed": execution.close_time,
                }
            )
        if as_json:
            _print_json(rows)
            return
        table = Table("workflow id", "type", "status", "started", "closed")
        for row in rows:
            table.add_row(*(str(row[k] or "") for k in ("workflow_id", "type", "status", "started", "closed")))
        out.print(table)

    _run(show())


@app.command()
def history(
    workflow_id: WorkflowId,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Where to write the JSON history.")],
) -> None:
    """Save a workflow's event history as JSON (for replay tests: tests/histories/)."""

    async def save() -> None:
        client = await connect()
        events = await fetch_history(client, workflow_id)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(events.to_json())
        out.print(f"{len(events.events)} events of {workflow_id} -> {out_file}")

    _run(save())


@app.command("replay")
def replay_command(
    workflow_id: Annotated[str | None, typer.Argument(help="Replay this workflow's history from Temporal.")] = None,
    file: Annotated[Path | None, typer.Option("--file", exists=True, dir_okay=False, help="A history JSON file.")] = None,
    directory: Annotated[Path | None, typer.Option("--dir", exists=True, file_okay=False, help="Every *.json in it.")] = None,
) -> None:
    """Replay histories against this code; exit 1 on any nondeterminism."""
    if sum(x is not None for x in (workflow_id, file, directory)) != 1:
        err.print("give exactly one of: ID, --file F, --dir D")
        raise typer.Exit(2)

    async def check() -> int:
        if workflow_id:
            histories = [await fetch_history(await connect(), workflow_id)]
        else:
            paths = [file] if file else history_files(directory)  # type: ignore[arg-type]
            if not paths:
                err.print(f"no *.json histories in {directory}")
                return 2
            try:
                histories = [load_history(p) for p in paths if p is not None]
            except (ValueError, KeyError) as unreadable:
                err.print(f"[red]not a Temporal history: {unreadable}[/red]")
                return 2
        results = await replay(histories)
        for run_id, failure in results.replay_failures.items():
            err.print(f"[red]replay failed for run {run_id}: {failure}[/red]")
        ok = len(histories) - len(results.replay_failures)
        out.print(f"{ok}/{len(histories)} histories replayed cleanly")
        return 1 if results.replay_failures else 0

    raise typer.Exit(_run(check()))


@dev_app.command("up")
def dev_up(
    worker: Annotated[bool, typer.Option(help="Also start a worker.")] = True,
) -> None:
    """Start the embedded Temporal server (UI on :8233) and a worker, in the background."""
    server_pid = devserver.start_background("server", devserver.dev_server_command())
    _run(devserver.wait_until_serving(DEFAULT_ADDRESS, timeout=60))
    out.print(f"Temporal server (pid {server_pid}) at {DEFAULT_ADDRESS}; UI http://localhost:8233")
    if worker:
        worker_pid = devserver.start_background("worker", [sys.executable, "-m", "worker"])
        out.print(f"Worker (pid {worker_pid}); logs in {devserver.STATE_DIR}/worker.log")


@dev_app.command("down")
def dev_down() -> None:
    """Stop the background worker and server started by `saga dev up`."""
    for name in ("worker", "server"):
        stopped = devserver.stop_background(name)
        out.print(f"{name}: {'stopped' if stopped else 'not running'}")


@app.command()
def demo() -> None:
    """Run the demo workflows against a running server and worker (see `saga dev up`)."""
    from client.demo import run_demo

    raise typer.Exit(_run(run_demo(out)))


@app.callback()
def _configure() -> None:
    configure_logging("WARNING")


def main() -> None:
    """Entry point of the ``saga`` console script."""
    try:
        app()
        code = 0
    except SystemExit as exit_request:
        if isinstance(exit_request.code, str):
            err.print(exit_request.code)
        code = exit_request.code if isinstance(exit_request.code, int) else int(exit_request.code is not None)
    except BaseException:  # an unexpected crash: show it, then exit like any other failure
        err.print_exception()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's Rust threads can abort CPython's finalization of a short-lived client
    # process (temporalio/sdk-python#300): everything is flushed, so skip finalization.
    os._exit(code)
