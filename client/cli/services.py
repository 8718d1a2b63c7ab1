"""``saga dev up|down`` and ``saga demo``: the embedded server and a worker on one machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from sagaworks.client.cli.output import JsonFlag, fail, out, print_json, print_rows, run_async, short_time

dev_app = typer.Typer(help="The embedded Temporal server and a worker, in the background.", no_args_is_help=True)

API_PORT = 8000
DEV_PORT = 7233
DEV_UI_PORT = 8233


_WHY = {
    "started": "",
    "reused": " (already running with these settings)",
    "restarted": " (restarted: it was running with other settings)",
}


@dev_app.command("up")
def dev_up(
    worker: Annotated[bool, typer.Option("--worker/--no-worker", help="Also start a worker.")] = True,
    viz_agent: Annotated[
        bool,
        typer.Option(
            "--viz-agent/--no-viz-agent",
            help="Serve the query family's viz agent as its own process for the worker "
            "(only where the query family is installed).",
        ),
    ] = True,
    api: Annotated[
        bool, typer.Option("--api/--no-api", help=f"Also start the HTTP API and console on :{API_PORT}.")
    ] = True,
    port: Annotated[int, typer.Option(metavar="PORT", help="The Temporal frontend's port.")] = DEV_PORT,
    ui_port: Annotated[int, typer.Option(metavar="PORT", help="The Temporal Web UI's port.")] = DEV_UI_PORT,
    api_port: Annotated[int, typer.Option(metavar="PORT", help="The HTTP API and console's port.")] = API_PORT,
    ui_codec_endpoint: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Point the Web UI at this codec server (see `saga codec-server`)."),
    ] = None,
) -> None:
    """Start the embedded Temporal server (UI on :8233) and a worker, in the background.

    Each port it would serve on (Temporal 7233, its Web UI 8233, the API 8000, the viz agent
    8003) must be free: one taken by another stack (`saga dev up` in another project, `make
    demo`'s) is named and nothing starts; --port, --ui-port, --api-port and
    SAGAWORKS_VIZ_AGENT_PORT choose others. A process is reported up only once it is alive
    and listening; one that exited at start fails the command with the end of its log.

    Where the query family is installed, the worker calls its viz agent over HTTP, served
    as a process of its own (port SAGAWORKS_VIZ_AGENT_PORT, 8003) unless VIZ_AGENT_URL
    names another; its breaker opens after 3 failures, for 10 s (SAGAWORKS_BREAKER_VIZ
    overrides), so `saga demo` can stop it and show the fallback. A worker already running
    with the same settings (SAGAWORKS_*, TEMPORAL_*, DATABASE_URL, GROQ_*, *_AGENT_URL...)
    is reused; one started with other settings is restarted with these.
    """
    from sagaworks.client import devserver

    serve_viz = worker and viz_agent and not os.environ.get("VIZ_AGENT_URL") and devserver.viz_agent_available()
    wanted = [
        ("server", port, "the Temporal frontend", "--port"),
        ("server", ui_port, "the Temporal Web UI", "--ui-port"),
    ]
    if api:
        wanted.append(("api", api_port, "the HTTP API and console", "--api-port"))
    if serve_viz:
        wanted.append((devserver.VIZ_AGENT, devserver.viz_agent_port(), "the viz agent", "SAGAWORKS_VIZ_AGENT_PORT"))
    taken = [w for w in wanted if devserver.running_pid(w[0]) is None and devserver.port_taken(w[1])]
    if taken:
        raise fail(ports_taken_message(taken), 1)

    address = f"127.0.0.1:{port}"
    # The worker and the API connect to this server, whatever TEMPORAL_ADDRESS says elsewhere.
    env = {"TEMPORAL_ADDRESS": address} if port != DEV_PORT else {}
    if ui_port != DEV_UI_PORT:
        env["SAGAWORKS_UI_URL"] = f"http://localhost:{ui_port}"
    server_command = devserver.dev_server_command(port=port, ui_port=ui_port, ui_codec_endpoint=ui_codec_endpoint)
    try:
        # Its command line is its settings: another --ui-codec-endpoint restarts it (the
        # history is kept in .temporal/temporal.db across the restart).
        server_pid, outcome = devserver.start_background("server", server_command, settings=" ".join(server_command))
        devserver.wait_until_listening("server", port)
        devserver.wait_until_listening("server", ui_port)
        run_async(devserver.wait_until_serving(address, timeout=60))
        out.print(f"Temporal server (pid {server_pid}){_WHY[outcome]} at {address}; UI http://localhost:{ui_port}")
        if worker:
            worker_env = {**env, **(serve_viz_agent() if serve_viz else {})}
            worker_pid, outcome = devserver.start_background(
                "worker",
                [sys.executable, "-m", "sagaworks.worker"],
                settings=devserver.settings_fingerprint({**os.environ, **worker_env}),
                env=worker_env,
            )
            if outcome != "reused":
                devserver.wait_until_logged("worker", "Worker polling")
            out.print(f"Worker (pid {worker_pid}){_WHY[outcome]}; logs in {devserver.STATE_DIR}/worker.log")
        if api:
            saga = str(Path(sys.executable).parent / "saga")
            api_pid, outcome = devserver.start_background(
                "api",
                [saga, "api", "--port", str(api_port)],
                settings=devserver.settings_fingerprint({**os.environ, **env}),
                env=env,
            )
            devserver.wait_until_listening("api", api_port)
            out.print(f"HTTP API and console (pid {api_pid}){_WHY[outcome]}: http://127.0.0.1:{api_port}/")
    except devserver.DevStackError as failed:
        raise fail(f"{failed}\n`saga dev down` stops what did start.", 1) from None
    if api and api_port != API_PORT:
        env["SAGAWORKS_CONSOLE_URL"] = f"http://127.0.0.1:{api_port}"  # the links `saga demo` prints
    if env:
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        out.print(f"Other saga commands reach this stack with: export {exports}")


def ports_taken_message(taken: list[tuple[str, int, str, str]]) -> str:
    """Why `saga dev up` starts nothing: each taken port, what it is for, and what to do."""
    lines = [f"Port {port} ({what}) is already in use." for _, port, what, _ in taken]
    lines += [
        "Nothing was started. If another sagaworks stack holds it: `saga dev down` in the project that started it "
        "(`make stop` in a sagaworks checkout running `make demo`).",
        "Or choose other ports: "
        + ", ".join(f"{how} PORT" if how.startswith("--") else f"{how}=PORT" for *_, how in taken)
        + ".",
    ]
    return "\n".join(lines)


def serve_viz_agent() -> dict[str, str]:
    """Serve the viz agent in the background; the settings the worker needs to call it,
    or none when it cannot be served (it exited, or its port was taken in between): charts
    are then drawn in the worker, and `saga demo` says why it skips the stopped-agent run."""
    from sagaworks.client import devserver

    try:
        agent_pid, outcome = devserver.start_viz_agent()
    except (RuntimeError, TimeoutError) as unserved:
        devserver.stop_background(devserver.VIZ_AGENT)
        out.print(
            f"[yellow]Viz agent not served ({unserved}); the worker draws the query family's charts itself. "
            "Another port: SAGAWORKS_VIZ_AGENT_PORT.[/yellow]"
        )
        return {}
    out.print(f"Viz agent (pid {agent_pid}){_WHY[outcome]} at {devserver.viz_agent_url()}")
    return devserver.viz_agent_worker_env()


@dev_app.command("down")
def dev_down() -> None:
    """Stop the background processes started by `saga dev up`."""
    from sagaworks.client import devserver

    # In the order they stop: what uses the server first.
    for name in ("api", "worker", devserver.VIZ_AGENT, "server"):
        stopped = devserver.stop_background(name)
        out.print(f"{name}: {'stopped' if stopped else 'not running'}")


def worker(ctx: typer.Context) -> None:
    """Serve every registered family (the options of `python -m sagaworks.worker`: see --help)."""
    from sagaworks.worker import run

    run(ctx.args, prog="saga worker")


def demo() -> None:
    """Run a sample of every family against a running server and worker (see `saga dev up`)."""
    from sagaworks.client.demo import run_demo

    raise typer.Exit(run_async(run_demo(out)))


def api(
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Interface to listen on (127.0.0.1 only without a token).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = API_PORT,
) -> None:
    """Serve the HTTP API and the web console (bearer token from SAGAWORKS_API_TOKEN)."""
    from sagaworks.client.api import serve

    serve(host, port)


def codec_server(
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8081,
    token: Annotated[
        str | None,
        typer.Option(metavar="TOKEN", help="Bearer token callers must send (default SAGAWORKS_CODEC_TOKEN)."),
    ] = None,
    ui_origin: Annotated[
        str | None,
        typer.Option(
            metavar="ORIGIN",
            help="The Web UI's origin, the only one CORS allows (default SAGAWORKS_CODEC_UI_ORIGIN or http://localhost:8233).",
        ),
    ] = None,
) -> None:
    """Serve /encode and /decode with the configured encryption keys, for the Web UI and the temporal CLI."""
    from sagaworks.client.codec import EncryptionError
    from sagaworks.client.codec_server import serve

    try:
        serve(host=host, port=port, token=token, ui_origin=ui_origin)
    except (EncryptionError, ValueError) as refused:
        raise fail(str(refused), 2) from None


def agent(
    name: Annotated[str, typer.Argument(metavar="NAME", help="nlp, data or viz.", show_default=False)],
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8001,
) -> None:
    """Serve one agent of the query family over HTTP (workers call it when NLP_AGENT_URL,
    DATA_AGENT_URL or VIZ_AGENT_URL points at it); /health answers its state."""
    from sagaworks.activities.query.remote import serve_agent

    if name not in ("nlp", "data", "viz"):
        raise fail(f"agent {name!r}: expected nlp, data or viz", 2)
    serve_agent(name, host, port)


def breakers(as_json: JsonFlag = False) -> None:
    """The shared circuit breakers of every worker (from the application database, DATABASE_URL)."""
    from sagaworks._breakers import breaker_statuses

    statuses = breaker_statuses()
    if as_json:
        print_json(statuses)
        return
    print_rows(
        ("BREAKER", "STATE", "FAILURES", "TRIPS", "LAST TRANSITION (UTC)", "NEXT TRIAL (UTC)"),
        [
            (
                s.name,
                s.state.upper(),
                f"{s.failures}/{s.fail_max}",
                str(s.trips),
                short_time(s.last_transition_at),
                short_time(s.next_trial_at),
            )
            for s in statuses
        ],
    )
