"""``saga trace``: a run's steps, timings, attempts and outcomes, from its history; for a
risk-aware run also its assessments, alerts, mitigations and breaker states."""

from __future__ import annotations

from typing import Annotated

import typer

from sagaworks.client.cli.output import WorkflowId, fail, print_json, run_async


def trace(
    workflow_id: WorkflowId,
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace as JSON.")] = False,
    as_markdown: Annotated[bool, typer.Option("--md", help="Print the trace as Markdown (the default).")] = False,
    payloads: Annotated[bool, typer.Option("--payloads", help="Include each step's decoded result in --json.")] = False,
    depth: Annotated[int, typer.Option(min=0, max=5, metavar="N", help="Child runs down to N levels.")] = 2,
) -> None:
    """Show a run step by step (Markdown; --json for scripts), derived from its Temporal history."""
    if as_json and as_markdown:
        raise fail("--json and --md exclude each other", 2)
    from sagaworks.client.connection import connect
    from sagaworks.client.postmortem import run_report, run_report_markdown
    from sagaworks.client.trace import drop_results

    async def show() -> None:
        report = await run_report(await connect(), workflow_id, depth=depth)
        if not as_json:
            print(run_report_markdown(report))
            return
        if not payloads:
            drop_results(report.trace)
        print_json(report)

    run_async(show())
