"""``saga dev up|down`` and ``saga demo``: the embedded server and a worker on one machine."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from client import devserver
from client.cli.output import out, run_async
from client.connection import DEFAULT_ADDRESS

dev_app = typer.Typer(help="The embedded Temporal server and a worker, in the background.", no_args_is_help=True)

BACKGROUND = ("worker", "server")
"""Background processes in the order they stop."""


@dev_app.command("up")
def dev_up(
    worker: Annotated[bool, typer.Option("--worker/--no-worker", help="Also start a worker.")] = True,
) -> None:
    """Start the embedded Temporal server (UI on :8233) and a worker, in the background.

    A worker already running with the same settings (SAGAWORKS_*, TEMPORAL_*, DATABASE_URL,
    GROQ_*...) is reused; one started with other settings is restarted with these.
    """
    server_pid, _ = devserver.start_background("server", devserver.dev_server_command())
    run_async(devserver.wait_until_serving(DEFAULT_ADDRESS, timeout=60))
    out.print(f"Temporal server (pid {server_pid}) at {DEFAULT_ADDRESS}; UI http://localhost:8233")
    if worker:
        worker_pid, outcome = devserver.start_background(
            "worker", [sys.executable, "-m", "worker"], settings=devserver.settings_fingerprint()
        )
        why = {
            "started": "",
            "reused": " (already running with these settings)",
            "restarted": " (restarted: it was running with other settings)",
        }[outcome]
        out.print(f"Worker (pid {worker_pid}){why}; logs in {devserver.STATE_DIR}/worker.log")


@dev_app.command("down")
def dev_down() -> None:
    """Stop the background processes started by `saga dev up`."""
    for name in BACKGROUND:
        stopped = devserver.stop_background(name)
        out.print(f"{name}: {'stopped' if stopped else 'not running'}")


def demo() -> None:
    """Run a sample of every family against a running server and worker (see `saga dev up`)."""
    from client.demo import run_demo

    raise typer.Exit(run_async(run_demo(out)))
