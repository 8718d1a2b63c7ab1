"""``saga postmortem`` and ``saga restart``: what went wrong, and a new run from a step."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from sagaworks.client.cli.output import fail, out, print_json, run_async

_SPAN = re.compile(r"^(\d+)([mhd])$")


def _since(text: str) -> timedelta:
    match = _SPAN.match(text)
    if match is None:
        raise fail(f"--since {text}: expected a span such as 30m, 12h or 7d", 2)
    value, unit = int(match.group(1)), match.group(2)
    return {"m": timedelta(minutes=value), "h": timedelta(hours=value), "d": timedelta(days=value)}[unit]


def postmortem_command(
    workflow_id: Annotated[
        str | None, typer.Argument(metavar="[WORKFLOW_ID]", help="One run (or use --family).", show_default=False)
    ] = None,
    family_name: Annotated[
        str | None, typer.Option("--family", metavar="FAMILY", help="Every closed run of this family.")
    ] = None,
    since: Annotated[
        str, typer.Option(metavar="SPAN", help="With --family: runs started within SPAN (30m, 12h, 7d).")
    ] = "7d",
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="With --family: at most N runs.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Failed steps, compensations, fallbacks taken, breakers opened, retries and failed
    attempts by error class of any run, from its history; plan-analysis runs add failed
    stages, mitigation effectiveness, critical alerts and frequent risks."""
    if (workflow_id is None) == (family_name is None):
        raise fail("give a WORKFLOW_ID or --family FAMILY", 2)
    span = _since(since)
    from sagaworks.client.connection import connect
    from sagaworks.client.postmortem import postmortem, postmortem_markdown

    async def show() -> None:
        try:
            report = await postmortem(
                await connect(), workflow_id=workflow_id, family_name=family_name, since=span, limit=limit
            )
        except KeyError as unknown:
            raise fail(str(unknown.args[0]), 2) from None
        print_json(report) if as_json else print(postmortem_markdown(report))

    run_async(show())


def restart(
    workflow_id: Annotated[
        str,
        typer.Argument(
            metavar="WORKFLOW_ID",
            help="A closed run of a family on the step runner, or of a LangGraph graph.",
            show_default=False,
        ),
    ],
    from_step: Annotated[
        str,
        typer.Option(
            "--from",
            "--from-stage",
            metavar="STEP",
            help=(
                "The step to run again: the steps before it are reused from the run's history. A family on the step "
                "runner restarts from any step of its plan (--from-stage is the same option); a LangGraph graph "
                "(sagaworks.langgraph) from any node the run reached (see --set)."
            ),
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Reuse steps the run compensated (their effects were undone).")
    ] = False,
    keep_faults: Annotated[
        bool,
        typer.Option(
            "--keep-faults",
            help="Keep the fault the run's input injected (inject_failure, "
            "inject_fault, fail); by default the new run drops it.",
        ),
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help=(
                "LangGraph graph runs: change KEY of the state before STEP (VALUE is JSON, or else text); repeatable."
            ),
        ),
    ] = None,
) -> None:
    """Start a new run that resumes at STEP, reusing the outcomes of the steps before it."""
    from sagaworks.client.connection import connect, ui_url
    from sagaworks.client.postmortem import RestartRefused, parse_set, restart_run
    from sagaworks.client.runs import RunConflict

    async def start() -> None:
        client = await connect()
        try:
            edits = parse_set(set_ or [])
        except ValueError as bad:
            raise fail(str(bad), 2) from None
        try:
            handle = await restart_run(
                client, workflow_id, from_step, force=force, keep_faults=keep_faults, edits=edits
            )
        except (RestartRefused, RunConflict) as refused:
            raise fail(str(refused)) from None
        out.print(f"restarted {handle.id} from {from_step}: run {handle.result_run_id}", markup=False)
        out.print(f"UI: {ui_url(client, handle.id, handle.result_run_id)}", markup=False)

    run_async(start())


def register(app: typer.Typer) -> None:
    """Add ``postmortem`` and ``restart`` to the ``saga`` command."""
    app.command("postmortem")(postmortem_command)
    app.command("restart")(restart)
