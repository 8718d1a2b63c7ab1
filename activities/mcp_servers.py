"""The MCP servers a worker reaches, from a TOML configuration, on ``temporalio-mcp``.

Temporal's integration (``temporalio.mcp``, pinned in pyproject.toml) owns the MCP
clients: :class:`~temporalio.mcp.MCPPlugin` registers one set of activities per server
(``temporalio.mcp.<server>.call-tool`` ...), spawns stdio servers or opens streamable-HTTP
sessions, reuses modern connections and closes every session and subprocess when the
worker shuts down. What it leaves to us, :class:`McpCallGuard` adds around those
activities:

* a per-tool timeout from the configuration (also bounded by the attempt's
  start-to-close timeout), enforced inside the worker: the plugin's activities neither
  heartbeat nor see Temporal's timeout, so a hung server would hold the activity slot;
* heartbeats while a call runs, so a dead worker is noticed after the heartbeat timeout
  and a cancelled workflow cancels the in-flight MCP request;
* retry classification: a tool result with ``isError`` becomes a non-retryable
  ``McpToolError`` carrying the tool's own message (the plugin returns it as a normal
  result); timeouts and transport failures stay retryable;
* a bound on what a call returns (:data:`DEFAULT_MAX_RESULT_BYTES`, ``max_result_bytes`` per
  server, at most :data:`MAX_RESULT_BYTES_CEILING`): the plugin returns the server's whole
  answer, which lands in the workflow's history, where Temporal refuses a payload over
  2 MiB (the workflow task fails again and again, the run stuck). A larger answer is a
  non-retryable ``McpResultTooLarge`` naming its size, the limit and the setting (see
  :func:`result_too_large` for why it is refused rather than truncated).

Arguments are checked against the tool's input schema on the workflow side
(``workflows/mcp.py``), before any call is scheduled.

Tools are read-only by default. A tool that may write runs only for the families the
server's ``allow_writes`` lists for it (:meth:`McpConfig.call_refusal`): the API and
``saga`` refuse other calls before starting a run, the guard refuses them before the
call-tool activity reaches the server (whoever started the workflow), and it marks each
listed tool with its refusal for the calling family, so workflow code refuses too, before
scheduling the call, also where the server annotates as writing a tool the configuration
calls read-only.

The configuration (``SAGAWORKS_MCP_CONFIG``, default ``mcp_servers/servers.toml``)::

    [servers.weather]
    command = "{python}"                 # {python}: this interpreter; {root}: the repo
    args = ["-m", "sagaworks.mcp_servers.weather"]
    env = { KEY = "value" }              # added to the MCP SDK's safe default environment
    pass_env = ["SAGAWORKS_WEATHER_LATENCY"]   # copied from the worker's environment
    timeout_seconds = 30                 # per call, unless tool_timeouts names the tool
    max_result_bytes = 262144            # the largest answer a call may return (bytes of JSON)
    tool_timeouts = { get_weather = 5 }
    read_only = true                     # every tool of this server only reads

    [servers.database]
    read_only_tools = ["read_query"]     # the others may write...
    allow_writes = { write_query = ["support-ticket"] }   # ...and run only for these families

    [servers.remote]
    url = "https://example.com/mcp"      # streamable HTTP instead of a command
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters, stdio_client
from mcp.client.stdio import get_default_environment
from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.mcp import MCPPlugin
from temporalio.plugin import SimplePlugin
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from sagaworks.activities.errors import ErrorClass, error
from sagaworks.contracts.mcp import DEFAULT_MAX_RESULT_BYTES, REFUSAL_KEY

ROOT = Path(__file__).resolve().parents[1]
"""The repository in a checkout; the ``sagaworks`` package, which holds ``mcp_servers/`` and
``samples/`` at the same paths, when installed from a wheel."""
DEFAULT_CONFIG = ROOT / "mcp_servers" / "servers.toml"
CONFIG_ENV = "SAGAWORKS_MCP_CONFIG"
ACTIVITY_PREFIX = "temporalio.mcp."
"""The name prefix of the plugin's activities: ``temporalio.mcp.<server>.<operation>``."""
TOOL_ERROR = "McpToolError"
"""The error type of a tool that answered with ``isError``; never retried."""
RESULT_TOO_LARGE = "McpResultTooLarge"
"""The error type of a tool whose answer is over its server's ``max_result_bytes``; never retried."""
MAX_RESULT_BYTES_CEILING = 2**20
"""The most ``max_result_bytes`` may be: half of Temporal's 2 MiB payload limit, leaving room
for a payload codec and the rest of the history event."""
HEARTBEAT_EVERY = 1.0
_DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - shared by every discarding server for the process's life


class McpServerConfig(BaseModel):
    """One server of the configuration: how to reach it and how long its tools may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    pass_env: list[str] = Field(default_factory=list)
    url: str | None = None
    requires: str | None = None
    """A program the server needs on PATH (``node``); a server without it is listed as
    unavailable instead of failing every call."""
    description: str = ""
    discard_stderr: bool = False
    """Drop what the server writes to stderr (by default it goes to the worker's stderr)."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    tool_timeouts: dict[str, float] = Field(default_factory=dict)
    max_result_bytes: int = Field(default=DEFAULT_MAX_RESULT_BYTES, ge=1024, le=MAX_RESULT_BYTES_CEILING)
    """The largest answer a call of this server's tools may return, in bytes of the encoded
    result (text and structured content both count); a larger one is a final
    ``McpResultTooLarge``."""
    read_only: bool = False
    """Every tool of the server only reads (vouched for by whoever configures it)."""
    read_only_tools: list[str] = Field(default_factory=list)
    """The tools that only read, on a server that can write: any other tool may write."""
    allow_writes: dict[str, list[str]] = Field(default_factory=dict)
    """Tool -> the families (catalog names) that may call it although it may write."""

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"server {self.name!r}: give exactly one of command (stdio) or url (HTTP)")
        return self

    def timeout(self, tool: str) -> float:
        """The per-call timeout of ``tool``."""
        return self.tool_timeouts.get(tool, self.timeout_seconds)

    def why_it_may_write(self, tool: str, annotations: Mapping[str, Any] | None = None) -> str | None:
        """Why ``tool`` may write, or None when it only reads.

        It only reads when the configuration says so (:attr:`read_only`,
        :attr:`read_only_tools`) and the server's MCP annotations (when given, as the plugin's
        list-tools returns them) do not say otherwise (``readOnlyHint: false``, or
        ``destructiveHint: true`` without ``readOnlyHint``). A server's ``readOnlyHint: true``
        alone is not enough: MCP annotations are hints that clients must not trust for such
        decisions, and a tool the configuration does not name is unknown, so it may write.
        """
        hints = annotations or {}
        read_only_hint, destructive_hint = hints.get("read_only_hint"), hints.get("destructive_hint")
        if read_only_hint is False or (read_only_hint is None and destructive_hint is True):
            return "the server annotates it as writing"
        if self.read_only or tool in self.read_only_tools:
            return None
        return "read_only_tools does not list it"

    def unavailable_reason(self) -> str | None:
        """Why this server cannot run on this machine, or None."""
        import shutil

        if self.requires and shutil.which(self.requires) is None:
            return f"{self.requires} is not installed"
        if self.command and not (shutil.which(self.command) or Path(self.command).exists()):
            return f"{self.command} not found (run `make install`)"
        return None

    def client(self) -> Client:
        """A fresh MCP client for this server (the plugin calls this per connection)."""
        if self.url is not None:
            return Client(self.url)
        env = {**get_default_environment(), **self.env}
        env.update({name: os.environ[name] for name in self.pass_env if name in os.environ})
        assert self.command is not None
        parameters = StdioServerParameters(command=self.command, args=self.args, env=env, cwd=str(ROOT))
        return Client(stdio_client(parameters, errlog=_DEVNULL if self.discard_stderr else sys.stderr))


class McpConfig(BaseModel):
    """Every configured server, by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: dict[str, McpServerConfig]
    source: str = ""
    """The file it was read from (named in refusals)."""

    def call_refusal(
        self, server: str, tool: str, family: str, annotations: Mapping[str, Any] | None = None
    ) -> str | None:
        """Why a run of ``family`` may not call ``tool`` of ``server`` (naming the setting),
        or None: a tool that may write (:meth:`McpServerConfig.why_it_may_write`) runs only
        for the families ``allow_writes`` lists for it. An unknown server is not refused here
        (calling it fails, naming the configured ones)."""
        config = self.servers.get(server)
        if config is None:
            return None
        why = config.why_it_may_write(tool, annotations)
        allowed = config.allow_writes.get(tool, [])
        if why is None or family in allowed:
            return None
        return (
            f"{server}.{tool} may write ({why}) and is refused for {family!r}: "
            f"[servers.{server}] allow_writes.{tool} in {self.source or 'the MCP configuration'} "
            f"lists the families that may call it ({', '.join(allowed) or 'none'})"
        )

    def server(self, name: str) -> McpServerConfig:
        """The server called ``name``; a clear non-retryable error for an unknown name."""
        try:
            return self.servers[name]
        except KeyError:
            raise error(
                ErrorClass.VALIDATION,
                f"server: no MCP server {name!r}; configured: {', '.join(self.servers)}",
                non_retryable=True,
            ) from None


def _expand(value: str) -> str:
    return value.replace("{root}", str(ROOT)).replace("{python}", sys.executable)


def load_config(path: Path | str | None = None) -> McpConfig:
    """Read the configuration (``SAGAWORKS_MCP_CONFIG`` or the default file).

    Raises ``ValueError`` naming the file and the field for a malformed configuration.
    """
    path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as problem:
        raise ValueError(f"{path}: {problem}") from problem
    servers: dict[str, Any] = {}
    for name, entry in raw.get("servers", {}).items():
        entry = dict(entry, name=name)
        for key in ("command", "url"):
            if isinstance(entry.get(key), str):
                entry[key] = _expand(entry[key])
        entry["args"] = [_expand(a) for a in entry.get("args", [])]
        entry["env"] = {k: _expand(v) for k, v in entry.get("env", {}).items()}
        servers[name] = entry
    try:
        return McpConfig(servers=servers, source=str(path))
    except ValueError as problem:
        raise ValueError(f"{path}: {problem}") from problem


def _family_name(workflow_type: str | None) -> str:
    """The catalog family that runs ``workflow_type`` (the type itself for other workflows;
    an activity started on its own has none, and no family allows it to write)."""
    from sagaworks import registry

    if workflow_type is None:
        return "(no workflow)"
    family = registry().family_of_type(workflow_type)
    return family.name if family is not None else workflow_type


def _tool_message(result: dict[str, Any]) -> str:
    texts = [block.get("text", "") for block in result.get("content") or [] if block.get("type") == "text"]
    return "\n".join(t for t in texts if t) or "the tool reported an error without a message"


def result_too_large(what: str, server: McpServerConfig, result: Any) -> ApplicationError | None:
    """A non-retryable ``McpResultTooLarge`` when ``result`` encodes to more than ``server``'s
    ``max_result_bytes``, naming its size, the limit and the setting; None when it fits.

    Refused, not truncated: an MCP answer is often structured (rows of a query, a JSON
    document, a list of paths), and a cut one is no longer valid or, worse, looks complete:
    a caller summing rows or reading a file would go on with a wrong answer and no sign of
    it. A clear failure tells the user to ask for less (a LIMIT, a narrower pattern, a
    range of the file) or to raise the limit for that server; retrying would get the same
    answer, so it is final.
    """
    size = len(activity.payload_converter().to_payloads([result])[0].data)
    if size <= server.max_result_bytes:
        return None
    return ApplicationError(
        f"{what} answered {size:,} bytes, over the {server.max_result_bytes:,}-byte limit of an MCP result "
        f"([servers.{server.name}] max_result_bytes, at most {MAX_RESULT_BYTES_CEILING:,}): ask the tool for less",
        type=RESULT_TOO_LARGE,
        non_retryable=True,
    )


class _GuardedActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, config: McpConfig) -> None:
        super().__init__(next)
        self._config = config

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if not info.activity_type.startswith(ACTIVITY_PREFIX):
            return await super().execute_activity(input)
        server_name, operation = info.activity_type[len(ACTIVITY_PREFIX) :].rsplit(".", 1)
        server = self._config.server(server_name)
        tool = input.args[0].get("name", "") if operation == "call-tool" and input.args else ""
        limit = server.timeout(tool) if tool else server.timeout_seconds
        if info.start_to_close_timeout:
            limit = min(limit, info.start_to_close_timeout.total_seconds())
        what = f"{server_name}.{tool}" if tool else f"{server_name} {operation}"
        family = _family_name(info.workflow_type)
        if operation == "call-tool" and (refusal := self._config.call_refusal(server_name, tool, family)):
            raise error(ErrorClass.VALIDATION, refusal, non_retryable=True)
        beating = asyncio.create_task(self._heartbeat())
        try:
            result = await asyncio.wait_for(super().execute_activity(input), limit)
        except TimeoutError:
            raise error(ErrorClass.EXTERNAL, f"{what} did not answer within {limit:g} s") from None
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        if operation == "call-tool" and result.get("is_error"):
            raise ApplicationError(f"{what}: {_tool_message(result)}", type=TOOL_ERROR, non_retryable=True)
        if operation == "call-tool" and (too_large := result_too_large(what, server, result)):
            raise too_large
        if operation == "list-tools":
            for listed in result.get("tools") or []:
                listed[REFUSAL_KEY] = self._config.call_refusal(
                    server_name, listed["name"], family, listed.get("annotations")
                )
        return result

    @staticmethod
    async def _heartbeat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY)


class McpCallGuard(Interceptor):
    """Per-tool timeouts, heartbeats, ``isError`` classification and a bound on what a call
    returns, for MCP activities."""

    def __init__(self, config: McpConfig) -> None:
        self._config = config

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _GuardedActivity(next, self._config)


def mcp_plugins(
    config: McpConfig | None = None, *, idle: timedelta | None = timedelta(minutes=5)
) -> list[SimplePlugin]:
    """The worker plugins serving the configured servers: Temporal's ``MCPPlugin`` and our guard.

    Servers that cannot run here (:meth:`McpServerConfig.unavailable_reason`) are left out,
    so calling them fails at once as an unknown activity instead of spawning in vain.
    """
    config = config or load_config()
    factories: dict[str, Callable[[], Client]] = {
        name: server.client for name, server in config.servers.items() if server.unavailable_reason() is None
    }
    return [
        MCPPlugin(factories, connection_idle_timeout=idle),
        SimplePlugin("sagaworks.McpCallGuard", interceptors=[McpCallGuard(config)]),
    ]
