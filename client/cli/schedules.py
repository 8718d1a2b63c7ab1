"""``saga schedule create|list|describe|pause|unpause|trigger|delete``: Temporal Schedules."""

from __future__ import annotations

from typing import Annotated

import typer

from sagaworks import registry
from sagaworks.client.cli.output import fail, out, print_json, print_rows, run_async
from sagaworks.client.cli.start import _read_input

schedule_app = typer.Typer(help="Run a family on a schedule (overlapping runs are skipped).", no_args_is_help=True)
ScheduleId = Annotated[str, typer.Argument(metavar="SCHEDULE_ID", help="Schedule id.", show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@schedule_app.command("create")
def create(
    family_name: Annotated[str, typer.Argument(metavar="FAMILY", help="Catalog family, e.g. news-digest.")],
    cron: Annotated[
        str, typer.Option("--cron", help='Cron expression in UTC, e.g. "0 7 * * MON".', show_default=False)
    ],
    input_source: Annotated[
        str, typer.Option("--input", "-i", metavar="FILE", help="JSON input, or - for stdin.", show_default=False)
    ],
    schedule_id: Annotated[
        str | None, typer.Option("--id", help="Schedule id (default: from the workflow id).")
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create a schedule that starts FAMILY with the input on the cron expression."""
    from pydantic import ValidationError
    from temporalio.client import ScheduleAlreadyRunningError

    from sagaworks import RunRefused
    from sagaworks.client.connection import connect
    from sagaworks.client.schedules import create_schedule

    try:
        fam = registry().family(family_name)
    except KeyError as unknown:
        raise fail(unknown.args[0], 2) from None
    try:
        arg = fam.parse(_read_input(input_source, fam))
    except ValidationError as invalid:
        raise fail(f"{input_source}: invalid {fam.name} input\n{invalid}", 2) from None

    async def send() -> None:
        try:
            handle = await create_schedule(await connect(), fam, arg, cron=cron, schedule_id=schedule_id, paused=paused)
        except ScheduleAlreadyRunningError:
            raise fail("a schedule with that id exists already (see `saga schedule list`)") from None
        except RunRefused as refused:
            raise fail(str(refused)) from None
        out.print(f"schedule {handle.id} created: {fam.name} on {cron!r} (UTC), overlaps skipped", markup=False)

    run_async(send())


@schedule_app.command("list")
def list_command(as_json: JsonFlag = False) -> None:
    """List the schedules."""
    from sagaworks.client.connection import connect
    from sagaworks.client.schedules import list_schedules

    async def show() -> None:
        rows = await list_schedules(await connect())
        if as_json:
            print_json(rows)
        else:
            print_rows(
                ("schedule", "paused", "next run"),
                [(r["schedule_id"], str(r["paused"]), r["next"] or "-") for r in rows],
            )

    run_async(show())


@schedule_app.command("describe")
def describe(schedule_id: ScheduleId, as_json: JsonFlag = False) -> None:
    """Show a schedule: spec, state, recent and next runs, skipped overlaps."""
    from sagaworks.client.connection import connect
    from sagaworks.client.schedules import describe_schedule

    async def show() -> None:
        info = await describe_schedule(await connect(), schedule_id)
        if as_json:
            print_json(info)
            return
        for key, value in info.items():
            out.print(f"{key}: {value}", markup=False)

    run_async(show())


def _simple(action: str, doc: str):  # -> a typer command
    def command(schedule_id: ScheduleId) -> None:
        from sagaworks.client.connection import connect
        from sagaworks.client.schedules import delete_schedule, set_paused, trigger_schedule

        async def send() -> None:
            client = await connect()
            if action == "trigger":
                await trigger_schedule(client, schedule_id)
            elif action == "delete":
                await delete_schedule(client, schedule_id)
            else:
                await set_paused(client, schedule_id, action == "pause")
            out.print(f"{schedule_id}: {action} done", markup=False)

        run_async(send())

    command.__doc__ = doc
    schedule_app.command(action)(command)


_simple("pause", "Pause a schedule: no runs until unpaused.")
_simple("unpause", "Unpause a schedule.")
_simple("trigger", "Run the schedule's action now (skipped while a run is still going).")
_simple("delete", "Delete a schedule (the runs it started are kept).")
