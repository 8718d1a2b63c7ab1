"""MCP tools are read-only by default: a tool that may write runs only for the families its
server's configuration allows, and is refused before the call everywhere else (the API,
``saga``, the workflow, the worker's guard)."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker
from typer.testing import CliRunner

from sagaworks import RunRefused, registry
from sagaworks.activities.mcp_servers import DEFAULT_CONFIG, McpConfig, McpServerConfig, load_config, mcp_plugins
from sagaworks.client.api import ApiSettings, create_app
from sagaworks.client.cli import app as saga
from sagaworks.contracts.mcp import McpCallInput
from sagaworks.workflows.mcp_call import McpToolCall
from tests.mcp_direct import DirectToolCall

DELETE = {"query": "DELETE FROM incidents"}
SQLITE = Path(load_config().servers["database"].command or "")


def _config(**database: Any) -> McpConfig:
    return McpConfig(
        servers={"database": McpServerConfig(name="database", command="x", **database)}, source="servers.toml"
    )


def test_a_tool_the_configuration_does_not_list_as_reading_is_refused_naming_the_setting() -> None:
    config = _config(read_only_tools=["read_query"])
    assert config.call_refusal("database", "read_query", "mcp-call") is None
    refusal = config.call_refusal("database", "write_query", "mcp-call")
    assert refusal == (
        "database.write_query may write (read_only_tools does not list it) and is refused for 'mcp-call': "
        "[servers.database] allow_writes.write_query in servers.toml lists the families that may call it (none)"
    )


def test_allow_writes_lets_only_the_families_it_lists() -> None:
    config = _config(allow_writes={"write_query": ["support-ticket"]})
    assert config.call_refusal("database", "write_query", "support-ticket") is None
    assert "(support-ticket)" in (config.call_refusal("database", "write_query", "mcp-call") or "")
    assert config.call_refusal("database", "create_table", "support-ticket") is not None


@pytest.mark.parametrize(
    ("annotations", "refused"),
    [
        (None, False),
        ({"read_only_hint": None, "destructive_hint": None}, False),
        ({"read_only_hint": True}, False),
        ({"read_only_hint": False}, True),
        ({"read_only_hint": False, "destructive_hint": False}, True),  # additive writes are writes
        ({"destructive_hint": True}, True),
        ({"read_only_hint": True, "destructive_hint": True}, False),  # destructive only counts when writing
    ],
)
def test_a_server_annotating_a_listed_tool_as_writing_wins(annotations: dict[str, Any] | None, refused: bool) -> None:
    for config in (_config(read_only_tools=["read_query"]), _config(read_only=True)):
        refusal = config.call_refusal("database", "read_query", "mcp-call", annotations)
        assert (refusal is not None) == refused, (config, annotations)
        assert refusal is None or "the server annotates it as writing" in refusal


def test_a_servers_read_only_hint_alone_does_not_make_an_unlisted_tool_read_only() -> None:
    assert _config().call_refusal("database", "drop_everything", "mcp-call", {"read_only_hint": True}) is not None
    assert _config(read_only=True).call_refusal("database", "anything", "mcp-call") is None
    assert _config().call_refusal("elsewhere", "anything", "mcp-call") is None  # unknown servers fail when called


def test_the_default_configuration_allows_what_the_families_call_and_no_writes() -> None:
    config = load_config(DEFAULT_CONFIG)
    reads = {
        "weather": ["get_weather", "list_cities"],
        "database": ["read_query", "list_tables", "describe_table"],
        "files": ["list_allowed_directories", "search_files", "read_text_file"],
    }
    writes = {
        "database": ["write_query", "create_table", "append_insight"],
        "files": ["write_file", "edit_file", "create_directory", "move_file"],
    }
    for name in ("mcp-call", "support-ticket", "aggregate"):
        for server, tools in reads.items():
            assert [t for t in tools if config.call_refusal(server, t, name)] == [], (name, server)
        for server, tools in writes.items():
            assert [t for t in tools if not config.call_refusal(server, t, name)] == [], (name, server)


def test_the_api_refuses_a_write_tool_before_starting_or_scheduling_a_run() -> None:
    # The stand-in Temporal client has no start_workflow: reaching it would be a 500.
    app = create_app(ApiSettings(token=None), client=object())  # type: ignore[arg-type]  # the offline app never calls Temporal
    with TestClient(app, base_url="http://127.0.0.1") as api:
        answer = api.post(
            "/api/workflows/mcp-call", json={"server": "database", "tool": "write_query", "arguments": DELETE}
        )
        assert answer.status_code == 403, answer.text
        error = answer.json()["error"]
        assert error["type"] == "RunRefused" and "[servers.database] allow_writes.write_query" in error["message"]
        assert "403" in api.get("/openapi.json").json()["paths"]["/api/workflows/mcp-call"]["post"]["responses"]
        scheduled = api.post(
            "/api/schedules",
            json={
                "family": "mcp-call",
                "cron": "* * * * *",
                "input": {"server": "database", "tool": "write_query", "arguments": DELETE},
            },
        )
        assert scheduled.status_code == 403 and "allow_writes.write_query" in scheduled.json()["error"]["message"]


def test_saga_mcp_call_refuses_a_write_tool_without_reaching_temporal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # nothing listens: a connection attempt would fail
    result = CliRunner().invoke(
        saga, ["mcp", "call", "database", "write_query", "--args", '{"query": "DELETE FROM incidents"}']
    )
    assert result.exit_code == 1
    assert "allow_writes.write_query" in result.output and "Temporal" not in result.output
    with pytest.raises(RunRefused, match="allow_writes.write_query"):
        registry().family("mcp-call").check_allowed(
            McpCallInput(server="database", tool="write_query", arguments=DELETE)
        )


@pytest.fixture
def scratch_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The database server on a copy of the support database (the sample stays untouched)."""
    if not SQLITE.exists():
        pytest.skip("the SQLite MCP server is not installed (make install)")
    copy = tmp_path / "support.db"
    shutil.copy(DEFAULT_CONFIG.parents[1] / "samples" / "support" / "support.db", copy)
    config = tmp_path / "servers.toml"
    config.write_text(DEFAULT_CONFIG.read_text().replace("{root}/samples/support/support.db", str(copy)))
    monkeypatch.setenv("SAGAWORKS_MCP_CONFIG", str(config))
    return copy


def _incidents(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM incidents").fetchone()[0])


async def _refusal(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause: BaseException | None = failed.value.cause
    while not isinstance(cause, ApplicationError) and cause is not None:
        cause = cause.__cause__
    assert isinstance(cause, ApplicationError), failed.value
    return cause


async def _calls_scheduled(handle: WorkflowHandle[Any, Any]) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name.endswith("call-tool")
    ]


async def test_a_run_started_around_the_api_is_refused_before_the_call(
    dev_client: Client, task_queue: str, scratch_database: Path
) -> None:
    # As `temporal workflow start --type McpToolCall` would: no client-side check runs.
    request = McpCallInput(server="database", tool="write_query", arguments=DELETE)
    async with Worker(
        dev_client, task_queue=task_queue, workflows=[McpToolCall, DirectToolCall], plugins=mcp_plugins()
    ):
        listed = await dev_client.start_workflow(
            "McpToolCall", request, id=f"mcp-{uuid.uuid4()}", task_queue=task_queue
        )
        refused = await _refusal(listed)
        assert refused.non_retryable and "allow_writes.write_query" in refused.message
        assert await _calls_scheduled(listed) == []  # refused by the workflow, never scheduled
        # Workflow code that skips the listing meets the worker's guard, before the server.
        direct = await dev_client.start_workflow(
            "DirectToolCall", request, id=f"direct-{uuid.uuid4()}", task_queue=task_queue
        )
        guarded = await _refusal(direct)
        assert guarded.non_retryable and "refused for 'DirectToolCall'" in guarded.message
    assert _incidents(scratch_database) == 2


async def test_allow_writes_lets_the_listed_family_write(
    dev_client: Client, task_queue: str, scratch_database: Path
) -> None:
    # The same call once the configuration allows it: the refusals above were the guard's.
    config = Path(load_config().source)
    config.write_text(
        config.read_text().replace(
            'read_only_tools = ["read_query",',
            'allow_writes = { write_query = ["mcp-call"] }\nread_only_tools = ["read_query",',
        )
    )
    assert load_config().servers["database"].allow_writes == {"write_query": ["mcp-call"]}
    request = McpCallInput(server="database", tool="write_query", arguments=DELETE)
    registry().family("mcp-call").check_allowed(request)
    async with Worker(
        dev_client, task_queue=task_queue, workflows=[McpToolCall, DirectToolCall], plugins=mcp_plugins()
    ):
        await dev_client.execute_workflow("McpToolCall", request, id=f"mcp-{uuid.uuid4()}", task_queue=task_queue)
        assert _incidents(scratch_database) == 0
        still_refused = await _refusal(
            await dev_client.start_workflow(
                "DirectToolCall", request, id=f"direct-{uuid.uuid4()}", task_queue=task_queue
            )
        )
        assert "refused for 'DirectToolCall'" in still_refused.message


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the npm filesystem server cannot run")
async def test_a_tool_the_server_annotates_as_writing_is_refused_even_if_listed(
    dev_client: Client, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A configuration mistake: write_file listed as read-only. The server says it writes.
    folder = tmp_path / "served"
    folder.mkdir()
    config = tmp_path / "servers.toml"
    config.write_text(
        DEFAULT_CONFIG.read_text()
        .replace('"{root}/samples"]', f'"{folder}"]')
        .replace('read_only_tools = [\n    "read_file",', 'read_only_tools = [\n    "write_file", "read_file",')
    )
    monkeypatch.setenv("SAGAWORKS_MCP_CONFIG", str(config))
    assert load_config().call_refusal("files", "write_file", "mcp-call") is None  # what the configuration alone says
    request = McpCallInput(server="files", tool="write_file", arguments={"path": str(folder / "x.txt"), "content": "x"})
    async with Worker(dev_client, task_queue=task_queue, workflows=[McpToolCall], plugins=mcp_plugins()):
        handle = await dev_client.start_workflow(
            "McpToolCall", request, id=f"mcp-{uuid.uuid4()}", task_queue=task_queue
        )
        refused = await _refusal(handle)
        assert "files.write_file may write (the server annotates it as writing)" in refused.message
        assert await _calls_scheduled(handle) == []
    assert not (folder / "x.txt").exists()
