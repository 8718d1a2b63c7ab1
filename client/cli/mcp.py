"""``saga mcp list|call`` (MCP tools through Temporal) and ``saga tickets`` (ticket queues)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import typer

from sagaworks import RunRefused, registry
from sagaworks.client.cli.output import fail, out, print_json, print_rows, run_async, short_time

mcp_app = typer.Typer(help="MCP servers and tools, called through Temporal.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@mcp_app.command("list")
def mcp_list(as_json: JsonFlag = False) -> None:
    """The configured servers (SAGAWORKS_MCP_CONFIG) and their tools, listed by the worker."""
    from sagaworks.activities.mcp_servers import load_config
    from sagaworks.client.connection import TASK_QUEUE, connect
    from sagaworks.contracts.mcp import McpListInput, McpServerTools

    try:
        config = load_config()
    except ValueError as problem:
        raise fail(str(problem), 2) from None
    available = [name for name, server in config.servers.items() if server.unavailable_reason() is None]

    async def listing() -> list[McpServerTools]:
        if not available:
            return []
        client = await connect()
        return await client.execute_workflow(
            "McpListTools",
            McpListInput(servers=available),
            id=f"mcp-list-{uuid.uuid4().hex[:12]}",
            task_queue=TASK_QUEUE,
            result_type=list[McpServerTools],
        )

    listed = {entry.server: entry for entry in run_async(listing())}
    if as_json:
        print_json(
            [
                {
                    "server": name,
                    "description": server.description,
                    "unavailable": server.unavailable_reason(),
                    **(listed[name].model_dump(exclude={"server"}) if name in listed else {}),
                }
                for name, server in config.servers.items()
            ]
        )
        return
    for name, server in config.servers.items():
        out.print(f"{name}: {server.description}", markup=False)
        if reason := server.unavailable_reason():
            out.print(f"  unavailable: {reason}", markup=False)
            continue
        entry = listed[name]
        if entry.error:
            out.print(f"  could not list tools: {entry.error}", markup=False)
        for tool in entry.tools:
            arguments = ", ".join([*tool.required, *(f"[{o}]" for o in tool.optional)])
            timeout = server.timeout(tool.name)
            out.print(f"  {tool.name}({arguments})  {timeout:g} s  {tool.description}", markup=False)


@mcp_app.command("call")
def mcp_call(
    server: Annotated[str, typer.Argument(help="A server of `saga mcp list`.")],
    tool: Annotated[str, typer.Argument(help="One of its tools.")],
    args: Annotated[str, typer.Option("--args", metavar="JSON", help="The tool's arguments, a JSON object.")] = "{}",
    timeout: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Per attempt (default: the config's).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Call one tool through Temporal (a one-activity workflow) and print its answer.

    A tool that may write is refused unless the MCP configuration's allow_writes lists
    mcp-call for it (tools are read-only by default; see mcp_servers/servers.toml).
    """
    try:
        arguments = json.loads(args)
    except json.JSONDecodeError as problem:
        raise fail(f"--args: not JSON ({problem})", 2) from None
    if not isinstance(arguments, dict):
        raise fail("--args: expected a JSON object of argument names to values", 2)
    from temporalio.client import WorkflowFailureError

    from sagaworks.activities.mcp_servers import load_config
    from sagaworks.client.connection import connect
    from sagaworks.client.runs import failure_chain, failure_lines, start_run
    from sagaworks.contracts.mcp import McpCallInput, McpToolOutput

    try:
        config = load_config()
    except ValueError as problem:
        raise fail(str(problem), 2) from None
    if server not in config.servers:
        raise fail(f"no MCP server {server!r}; configured: {', '.join(config.servers)}", 2)
    request = McpCallInput(
        server=server, tool=tool, arguments=arguments, timeout_seconds=timeout or config.servers[server].timeout(tool)
    )
    fam = registry().family("mcp-call")
    try:
        fam.check_allowed(request)  # before connecting: a tool that may write needs no server to be refused
    except RunRefused as refused:
        raise fail(str(refused)) from None

    async def call() -> McpToolOutput:
        handle = await start_run(await connect(), fam, request)
        return McpToolOutput.model_validate(await handle.result())

    try:
        output = run_async(call())
    except WorkflowFailureError as failed:
        raise fail("\n".join(failure_lines(failure_chain(failed.cause))), 1) from None
    if as_json:
        print_json(output)
    else:
        out.print(output.text if output.structured is None else json.dumps(output.structured, indent=2), markup=False)


def tickets(
    priority: Annotated[str | None, typer.Option(metavar="PRIORITY", help="LOW, MEDIUM, HIGH...")] = None,
    state: Annotated[str | None, typer.Option(metavar="STATE", help="open, assigned, resolved...")] = None,
    ticket_type: Annotated[
        str | None, typer.Option("--type", metavar="TYPE", help="technical_support, sales_inquiry...")
    ] = None,
    assignee: Annotated[str | None, typer.Option(metavar="AGENT")] = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Support tickets by priority, state, type or assignee (a visibility query); a value
    it does not know is refused with the list of those it does."""
    from sagaworks.client.connection import connect
    from sagaworks.client.tickets import TicketFilterInvalid, list_tickets, ticket_query

    try:
        query = ticket_query(priority=priority, state=state, ticket_type=ticket_type, assignee=assignee)
    except TicketFilterInvalid as invalid:
        raise fail(f"--{invalid}", 2) from None

    async def show() -> None:
        rows = await list_tickets(await connect(), query, limit=limit)
        if as_json:
            print_json(rows)
            return
        print_rows(
            ("WORKFLOW ID", "TYPE", "PRIORITY", "STATE", "ASSIGNEE", "STARTED (UTC)"),
            [
                (r.workflow_id, r.type or "", r.priority or "", r.state or "", r.assignee or "", short_time(r.started))
                for r in rows
            ],
        )

    run_async(show())


def register(app: typer.Typer) -> None:
    """Add ``saga mcp`` and ``saga tickets`` to the ``saga`` command."""
    app.add_typer(mcp_app, name="mcp")
    app.command("tickets")(tickets)
