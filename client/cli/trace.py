"""``saga trace``: a run's steps, timings, attempts and outcomes, from its history."""

from __future__ import annotations

from typing import Annotated

import typer

from client.cli.output import WorkflowId, print_json, run_async
from client.connection import connect
from client.trace import trace_markdown, trace_run



def trace(
    workflow_id: WorkflowId,
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace as JSON.")] = False,
    payloads: Annotated[bool, typer.Option("--payloads", help="Include each step's decoded result.")] = False,
    depth: Annotated[int, typer.Option(min=0, max=5, metavar="N", help="Child runs down to N levels.")] = 2,
) -> None:
    """Show a run step by step (Markdown; --json for scripts), derived from its Temporal history."""

    async def show() -> None:
        result = await trace_run(await connect(), workflow_id, payloads=payloads, depth=depth)
        print_json(result) if as_json else print(trace_markdown(result))

    run_async(show())
