"""``saga status|result|cancel|pause|resume|list``: watch and control runs of any family."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sagaworks import registry
from sagaworks.client.cli.output import (
    JsonFlag,
    WorkflowId,
    fail,
    out,
    print_json,
    print_outcome,
    print_rows,
    run_async,
    short_time,
)

# What a command needs to reach Temporal is imported when it runs: `saga --help` stays quick.


def status(workflow_id: WorkflowId, as_json: JsonFlag = False) -> None:
    """Show a run's state and, while a worker answers, its live progress."""

    from sagaworks.client.connection import connect
    from sagaworks.client.runs import describe_run

    async def show() -> None:
        info = await describe_run(await connect(), workflow_id)
        if as_json:
            print_json(info)
            return
        for key, value in info.items():
            if key != "progress":
                out.print(f"[bold]{key}[/bold]: {value}", highlight=False)
        out.print("[bold]progress[/bold]:")
        progress = info["progress"]
        out.print_json(data=progress) if isinstance(progress, dict) else out.print(progress, markup=False)

    run_async(show())


def result(workflow_id: WorkflowId, as_json: JsonFlag = False) -> None:
    """Wait for a run's result (exit 1 if it failed, with the failure chain)."""

    from sagaworks.client.connection import connect, ui_url
    from sagaworks.client.runs import run_outcome

    async def show() -> int:
        client = await connect()
        outcome = await run_outcome(client.get_workflow_handle(workflow_id))
        return print_outcome(outcome, as_json=as_json, link=ui_url(client, workflow_id))

    raise typer.Exit(run_async(show()))


def cancel(workflow_id: WorkflowId) -> None:
    """Cancel a running run: it compensates what it did and ends CANCELED."""
    from sagaworks.client.connection import connect
    from sagaworks.client.runs import RunAlreadyClosed, cancel_run

    async def send() -> None:
        try:
            await cancel_run(await connect(), workflow_id)
        except RunAlreadyClosed as closed:
            raise fail(str(closed)) from None
        out.print(f"cancellation requested for {workflow_id}", markup=False)

    run_async(send())


def _signal_command(name: str, doc: str) -> Any:
    def command(workflow_id: WorkflowId) -> None:
        from sagaworks.client.connection import connect
        from sagaworks.client.runs import RunAlreadyClosed, signal_run

        async def send() -> None:
            try:
                await signal_run(await connect(), workflow_id, name)
            except RunAlreadyClosed as closed:
                raise fail(str(closed)) from None
            out.print(f"{name} sent to {workflow_id}", markup=False)

        run_async(send())

    command.__doc__ = doc
    return command


pause = _signal_command("pause", "Hold a run before its next step.")
resume = _signal_command("resume", "Let a paused run go on.")


def list_workflows(
    family_name: Annotated[
        str | None, typer.Option("--family", metavar="FAMILY", help="Only runs of this family.")
    ] = None,
    status_filter: Annotated[
        str | None,
        typer.Option(
            "--status", metavar="STATE", help="Only runs in this state: running, completed, failed, canceled..."
        ),
    ] = None,
    query: Annotated[
        str, typer.Option(metavar="QUERY", help="A visibility query, e.g. \"StartTime > '2026-11-01T00:00:00Z'\".")
    ] = "",
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most this many rows.")] = 20,
    alert: Annotated[
        str | None,
        typer.Option(
            "--alert", metavar="LEVEL", help="Only runs that alerted at LEVEL or above: INFO, WARNING, ERROR..."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List recent runs, newest first (whole ids, UTC times)."""
    from sagaworks.client.connection import connect
    from sagaworks.client.runs import RUN_STATES, list_runs, visibility_query
    from sagaworks.contracts.plans import ALERT_LEVELS, alert_query

    statuses = tuple(state.lower() for state in RUN_STATES)
    try:
        fam = registry().family(family_name) if family_name else None
    except KeyError as unknown:
        raise fail(str(unknown.args[0]), 2) from None
    if status_filter and status_filter.lower() not in statuses:
        raise fail(f"--status {status_filter}: expected one of {', '.join(statuses)}", 2)
    if alert and alert.upper() not in ALERT_LEVELS:
        raise fail(f"--alert {alert}: expected one of {', '.join(ALERT_LEVELS)}", 2)
    if alert:
        query = " AND ".join(filter(None, [f"({query})" if query else "", alert_query(alert)]))

    async def show() -> None:
        rows = await list_runs(
            await connect(), visibility_query(family=fam, status=status_filter, query=query), limit=limit
        )
        if as_json:
            print_json(rows)
            return
        print_rows(
            ("WORKFLOW ID", "FAMILY", "STATUS", "STARTED (UTC)", "CLOSED (UTC)"),
            [
                (
                    r["workflow_id"],
                    r["family"] or r["type"],
                    r["status"],
                    short_time(r["started"]),
                    short_time(r["closed"]),
                )
                for r in rows
            ],
        )

    run_async(show())
