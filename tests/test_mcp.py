"""Durable MCP tool calls against the real servers of the default configuration."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from sagaworks.activities.mcp_servers import RESULT_TOO_LARGE, TOOL_ERROR, load_config, mcp_plugins
from sagaworks.contracts.mcp import DEFAULT_MAX_RESULT_BYTES, MAX_ARGUMENT_BYTES, McpCallInput, McpToolOutput
from sagaworks.workflows.mcp_call import McpToolCall

NODE = shutil.which("node")


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live child process of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # the command may contain spaces and parentheses: fields follow the last ')'
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(entry.name), cmdline))
    return found


def mcp_children() -> list[tuple[int, str]]:
    return [c for c in children_of(os.getpid()) if "mcp" in c[1] or "server-filesystem" in c[1]]


@asynccontextmanager
async def mcp_worker(client: Client, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(client, task_queue=task_queue, workflows=[McpToolCall], plugins=mcp_plugins()) as worker:
        yield worker


async def call(
    client: Client, task_queue: str, server: str, tool: str, timeout: float = 10, **arguments
) -> McpToolOutput:
    return await client.execute_workflow(
        McpToolCall.run,
        McpCallInput(server=server, tool=tool, arguments=arguments, timeout_seconds=timeout),
        id=f"mcp-{uuid.uuid4()}",
        task_queue=task_queue,
    )


@pytest.fixture
def latency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The weather server's latency file (read at every call), empty to start with."""
    path = tmp_path / "latency.json"
    path.write_text("{}")
    monkeypatch.setenv("SAGAWORKS_WEATHER_LATENCY", str(path))
    return path


async def test_weather_tool_is_called_through_an_activity(dev_client: Client, task_queue: str) -> None:
    async with mcp_worker(dev_client, task_queue):
        output = await call(dev_client, task_queue, "weather", "get_weather", city="Seattle", date="2015-12-31")
    observation = output.structured
    assert (observation["city"], observation["date"]) == ("Seattle", "2015-12-31")
    assert observation["conditions"] == "sun" and observation["temp_max_c"] == 5.6


async def test_database_server_from_its_own_environment_answers_a_query(dev_client: Client, task_queue: str) -> None:
    async with mcp_worker(dev_client, task_queue):
        output = await call(
            dev_client,
            task_queue,
            "database",
            "read_query",
            query="SELECT tier FROM customers WHERE email='ada@example.com'",
        )
    assert "premium" in output.text


@pytest.mark.skipif(NODE is None, reason="node is not installed: the npm filesystem server cannot run")
async def test_filesystem_server_is_confined_to_samples(dev_client: Client, task_queue: str) -> None:
    async with mcp_worker(dev_client, task_queue):
        allowed = await call(dev_client, task_queue, "files", "list_allowed_directories")
        assert allowed.text.strip().endswith("samples")
        with pytest.raises(WorkflowFailureError) as refused:
            await call(dev_client, task_queue, "files", "read_text_file", path="/etc/passwd")
    cause = refused.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == TOOL_ERROR and "outside allowed directories" in cause.cause.message


async def start_weather(client: Client, task_queue: str, timeout: float = 10, **arguments) -> WorkflowHandle:
    """Start a weather.get_weather call through the one-tool workflow."""
    return await client.start_workflow(
        McpToolCall.run,
        McpCallInput(server="weather", tool="get_weather", arguments=arguments, timeout_seconds=timeout),
        id=f"mcp-{uuid.uuid4()}",
        task_queue=task_queue,
    )


async def call_attempts(handle: WorkflowHandle) -> list[int]:
    """The attempt number of every started activity, in history order."""
    return [
        e.activity_task_started_event_attributes.attempt
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]


async def failed_call(client: Client, task_queue: str, **arguments) -> tuple[WorkflowHandle, WorkflowFailureError]:
    """A weather.get_weather call that must fail: its handle and the failure."""
    async with mcp_worker(client, task_queue):
        handle = await start_weather(client, task_queue, **arguments)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    return handle, failed.value


async def test_tool_error_is_final_and_carries_the_tools_message(dev_client: Client, task_queue: str) -> None:
    handle, failed = await failed_call(dev_client, task_queue, city="Atlantis")
    error = failed.cause.__cause__
    assert isinstance(error, ApplicationError) and error.type == TOOL_ERROR and error.non_retryable
    assert "no weather station for 'Atlantis'" in error.message
    assert (await call_attempts(handle))[-1] == 1


async def test_bad_arguments_are_refused_before_any_call(dev_client: Client, task_queue: str) -> None:
    handle, failed = await failed_call(dev_client, task_queue, town="Seattle")
    assert "arguments: weather.get_weather refused: 'city' is a required property" in str(failed.cause)
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["temporalio.mcp.weather.list-tools"]


async def pending_attempt(handle, at_least: int) -> None:
    for _ in range(600):
        description = await handle.describe()
        pending = description.raw_description.pending_activities
        if pending and pending[0].attempt >= at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the call never reached attempt {at_least}")


async def test_a_hanging_server_times_out_and_the_retry_answers(
    dev_client: Client, task_queue: str, latency: Path
) -> None:
    latency.write_text(json.dumps({"Seattle": 3600}))
    async with mcp_worker(dev_client, task_queue):
        handle = await start_weather(dev_client, task_queue, timeout=2, city="Seattle")
        await pending_attempt(handle, 2)
        latency.write_text("{}")
        output = await handle.result()
    assert output.structured["city"] == "Seattle"
    assert (await call_attempts(handle))[-1] >= 2, "the call answered without being retried"


async def test_a_server_killed_mid_call_is_restarted_on_retry(
    dev_client: Client, task_queue: str, latency: Path
) -> None:
    latency.write_text(json.dumps({"Seattle": 3600}))
    async with mcp_worker(dev_client, task_queue):
        handle = await start_weather(dev_client, task_queue, timeout=60, city="Seattle")
        for _ in range(300):
            servers = [c for c in mcp_children() if "mcp_servers.weather" in c[1]]
            pending = (await handle.describe()).raw_description.pending_activities
            if servers and pending and pending[0].activity_type.name.endswith("call-tool"):
                break
            await asyncio.sleep(0.1)
        assert len(servers) == 1
        latency.write_text("{}")
        os.kill(servers[0][0], signal.SIGKILL)
        output = await handle.result()
        restarted = [c for c in mcp_children() if "mcp_servers.weather" in c[1]]
    assert output.structured["city"] == "Seattle"
    assert restarted and restarted[0][0] != servers[0][0]
    assert (await call_attempts(handle))[-1] == 2, "the killed call was not retried"


async def test_no_server_process_outlives_the_worker(dev_client: Client, task_queue: str) -> None:
    before = mcp_children()
    async with mcp_worker(dev_client, task_queue):
        await call(dev_client, task_queue, "weather", "get_pid")
        running = [c for c in mcp_children() if c not in before]
        assert running, "the weather server should be running (connections are reused)"
    for _ in range(100):
        if not [c for c in mcp_children() if c not in before]:
            break
        await asyncio.sleep(0.1)
    assert [c for c in mcp_children() if c not in before] == []


def test_config_names_the_file_and_field_of_a_mistake(tmp_path: Path) -> None:
    bad = tmp_path / "servers.toml"
    bad.write_text('[servers.x]\ncommand = "a"\nurl = "http://b"\n')
    with pytest.raises(ValueError, match=r"(?s)servers.toml.*server 'x': give exactly one of command"):
        load_config(bad)


def characters_query(count: int) -> str:
    """A read-only query whose one value is ``count`` characters long."""
    return f"SELECT substr(hex(zeroblob({count})), 1, {count}) AS v"


async def result_bytes(handle: WorkflowHandle) -> int:
    """The size of the call-tool activity's result payload in ``handle``'s history (the last
    activity to complete: list-tools comes first)."""
    sizes = [
        len(e.activity_task_completed_event_attributes.result.payloads[0].data)
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    ]
    return sizes[-1]


async def test_an_answer_at_the_result_limit_passes_and_one_byte_more_is_refused(
    dev_client: Client, task_queue: str
) -> None:
    async with mcp_worker(dev_client, task_queue):
        # The answer's size past its value (the tool's framing) is the same for any value.
        probe = await start_query(dev_client, task_queue, characters_query(1000))
        await probe.result()
        framing = await result_bytes(probe) - 1000
        at_limit = await start_query(dev_client, task_queue, characters_query(DEFAULT_MAX_RESULT_BYTES - framing))
        output = await at_limit.result()
        assert await result_bytes(at_limit) == DEFAULT_MAX_RESULT_BYTES and len(output.text) > 250_000
        over = await start_query(dev_client, task_queue, characters_query(DEFAULT_MAX_RESULT_BYTES - framing + 1))
        with pytest.raises(WorkflowFailureError) as failed:
            await over.result()
    cause = failed.value.cause
    assert isinstance(cause, ActivityError)
    error = cause.cause
    assert isinstance(error, ApplicationError) and error.type == RESULT_TOO_LARGE and error.non_retryable
    assert (
        f"database.read_query answered {DEFAULT_MAX_RESULT_BYTES + 1:,} bytes, over the 262,144-byte limit"
        in error.message
    )
    assert "[servers.database] max_result_bytes" in error.message
    assert (await call_attempts(over))[-1] == 1


async def start_query(client: Client, task_queue: str, query: str) -> WorkflowHandle:
    return await client.start_workflow(
        McpToolCall.run,
        McpCallInput(server="database", tool="read_query", arguments={"query": query}),
        id=f"mcp-{uuid.uuid4()}",
        task_queue=task_queue,
    )


async def test_a_server_may_lower_its_result_limit(
    dev_client: Client, task_queue: str, tmp_path: Path, monkeypatch
) -> None:
    config = tmp_path / "servers.toml"
    default = Path(load_config.__globals__["DEFAULT_CONFIG"]).read_text()
    config.write_text(default.replace("[servers.database]\n", "[servers.database]\nmax_result_bytes = 4096\n"))
    monkeypatch.setenv("SAGAWORKS_MCP_CONFIG", str(config))
    async with mcp_worker(dev_client, task_queue):
        assert "0000" in (await (await start_query(dev_client, task_queue, characters_query(3000))).result()).text
        with pytest.raises(WorkflowFailureError) as failed:
            await (await start_query(dev_client, task_queue, characters_query(5000))).result()
    cause = failed.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert "over the 4,096-byte limit of an MCP result ([servers.database] max_result_bytes" in cause.cause.message


def test_a_result_limit_past_the_payload_limit_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "servers.toml"
    config.write_text('[servers.x]\ncommand = "a"\nmax_result_bytes = 2097152\n')
    with pytest.raises(
        ValueError, match=r"(?s)servers.x.max_result_bytes|max_result_bytes.*less than or equal to 1048576"
    ):
        load_config(config)


def test_arguments_over_their_limit_are_refused_naming_the_field() -> None:
    McpCallInput(server="database", tool="read_query", arguments={"query": "x" * (MAX_ARGUMENT_BYTES - 20)})
    with pytest.raises(ValueError, match=r"(?s)arguments.*over the 65,536-byte limit of a tool's arguments"):
        McpCallInput(server="database", tool="read_query", arguments={"query": "x" * MAX_ARGUMENT_BYTES})
