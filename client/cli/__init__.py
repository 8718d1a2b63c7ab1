"""The ``saga`` command: start, watch, control and replay workflows of the catalog.

Commands live in modules by concern (``start``, ``control``, ``history``, ``services``);
this module assembles them and is the console script's entry point (:func:`main`).
"""

from __future__ import annotations

import os
import sys

import typer

from sagaworks.client.cli import (
    approvals,
    control,
    history,
    mcp,
    patches,
    postmortem,
    schedules,
    services,
    start,
    stats,
    trace,
)
from sagaworks.client.cli.output import err
from sagaworks.client.observability import configure_logging

app = typer.Typer(
    help="sagaworks: start, watch, control and replay durable workflows on Temporal.\n\n"
    "Connection settings come from Temporal's envconfig (TEMPORAL_ADDRESS, "
    "TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_PROFILE).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(start.run_app, name="run")
app.add_typer(services.dev_app, name="dev")
app.add_typer(schedules.schedule_app, name="schedule")
app.command("catalog")(start.catalog)
app.command("inventory")(start.inventory)
for command in (control.status, control.result, control.cancel):
    app.command()(command)
app.command("pause")(control.pause)
app.command("resume")(control.resume)
app.command("list")(control.list_workflows)
app.command("stats")(stats.stats)
app.command()(history.history)
app.command("replay")(history.replay_command)
app.command("patches")(patches.patches)
app.command("trace")(trace.trace)
postmortem.register(app)
app.command(
    "worker",
    # Its options are the worker's own (argparse): passed through, --help included.
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)(services.worker)
app.command()(services.demo)
app.command("codec-server")(services.codec_server)
app.command("api")(services.api)
app.command("agent")(services.agent)
app.command("breakers")(services.breakers)
approvals.register(app)
mcp.register(app)


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
            err.print(exit_request.code, markup=False)
        code = exit_request.code if isinstance(exit_request.code, int) else int(exit_request.code is not None)
    except KeyboardInterrupt:  # Ctrl-C while waiting: the run goes on in Temporal
        err.print("interrupted (the run itself goes on; `saga status ID` follows it)")
        code = 130
    except BaseException:  # an unexpected crash: show it, then exit like any other failure
        err.print_exception()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's Rust threads can abort CPython's finalization of a short-lived client
    # process (temporalio/sdk-python#300): everything is flushed, so skip finalization.
    os._exit(code)
