"""The aggregate family against the real MCP servers: fan-out, partial failure, skip, cancel."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from sagaworks.activities.mcp_servers import load_config, mcp_plugins
from sagaworks.contracts.aggregate import AggregateInput, AggregateResult, plan_sources
from sagaworks.workflows.aggregate import Aggregation
from tests.test_mcp import latency  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: no filesystem MCP server")


def request(question: str, **fields) -> AggregateInput:
    return AggregateInput(request_id=f"t-{uuid.uuid4().hex[:8]}", question=question, **fields)


async def run(client: Client, task_queue: str, question: str, **fields) -> AggregateResult:
    async with Worker(client, task_queue=task_queue, workflows=[Aggregation], plugins=mcp_plugins()):
        return await client.execute_workflow(
            Aggregation.run, request(question, **fields), id=f"agg-{uuid.uuid4()}", task_queue=task_queue
        )


def source(result: AggregateResult, name: str):
    return next(s for s in result.sources if s.source == name)


async def test_all_three_sources_answer(dev_client: Client, task_queue: str) -> None:
    result = await run(
        dev_client, task_queue, "Weather in Seattle and San Francisco, saga files, and our customers please"
    )
    assert result.completed == ["weather", "files", "database"], result
    assert source(result, "weather").items[0].result["city"] == "Seattle"
    files = {item.item: item for item in source(result, "files").items}
    assert list(files) == ["saga"] and "saga-pattern.md" in files["saga"].result["content"]
    assert "ada@example.com" in json.dumps(source(result, "database").items[0].result)


async def test_one_source_down_gives_a_partial_result(
    dev_client: Client, task_queue: str, monkeypatch, tmp_path
) -> None:
    # The database server's program is missing: every call of it fails, the others answer.
    config = tmp_path / "servers.toml"
    config.write_text(
        Path(load_config.__globals__["DEFAULT_CONFIG"])
        .read_text()
        .replace("/.venv-mcp-sqlite/bin/mcp-server-sqlite", "/no-such-server")
    )
    monkeypatch.setenv("SAGAWORKS_MCP_CONFIG", str(config))
    result = await run(dev_client, task_queue, "Weather in Seattle, saga files and customers")
    assert result.completed == ["weather", "files"] and result.failed == ["database"]
    assert "database" in source(result, "database").items[0].error
    assert source(result, "weather").items[0].result["city"] == "Seattle"


async def test_one_city_timing_out_fails_alone(dev_client: Client, task_queue: str, latency: Path) -> None:
    latency.write_text(json.dumps({"San Francisco": 3600}))
    result = await run(dev_client, task_queue, "Weather in Seattle and San Francisco")
    weather = source(result, "weather")
    assert result.partial == ["weather"] and weather.state == "partial"
    seattle, san_francisco = weather.items
    assert seattle.state == "completed" and seattle.result["city"] == "Seattle"
    assert san_francisco.state == "failed"
    assert "did not answer within 5 s" in san_francisco.error or "TimeoutError" in san_francisco.error


async def test_irrelevant_sources_are_skipped_not_failed(dev_client: Client, task_queue: str) -> None:
    result = await run(dev_client, task_queue, "How warm was it in Seattle?")
    assert result.completed == ["weather"] and result.failed == [] and result.skipped == ["files", "database"]
    assert source(result, "files").reason == "the question asks about no files or logs"


def test_plan_names_the_items_of_each_source() -> None:
    weather, files, database = plan_sources(request("Show me the saga logs for Paris and the products table"))
    assert [i.item for i in weather.items] == ["Paris"]
    assert [i.item for i in files.items] == ["saga", "table"]
    assert [i.item for i in database.items] == ["SELECT * FROM products LIMIT 20"]


async def test_cancel_mid_fan_out_cancels_the_calls_in_flight(
    dev_client: Client, task_queue: str, latency: Path
) -> None:
    latency.write_text(json.dumps({"Seattle": 3600}))
    async with Worker(dev_client, task_queue=task_queue, workflows=[Aggregation], plugins=mcp_plugins()):
        handle = await dev_client.start_workflow(
            Aggregation.run,
            request("Weather in Seattle and our customers"),
            id=f"agg-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        for _ in range(300):
            status = await handle.query(Aggregation.status)
            if (
                status.sources
                and status.sources[0].items[0].state == "running"
                and status.sources[2].state == "completed"
            ):
                break
            await asyncio.sleep(0.1)
        assert status.sources[0].state == "running", status
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert isinstance(failed.value.cause, CancelledError)
    events = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED in events


async def test_pause_holds_the_items_until_resumed(dev_client: Client, task_queue: str) -> None:
    async with Worker(dev_client, task_queue=task_queue, workflows=[Aggregation], plugins=mcp_plugins()):
        handle = await dev_client.start_workflow(
            Aggregation.run,
            request("Weather in Seattle and San Francisco"),
            id=f"agg-{uuid.uuid4()}",
            task_queue=task_queue,
            start_signal="pause",
        )
        for _ in range(100):
            status = await handle.query(Aggregation.status)
            if status.sources:
                break
            await asyncio.sleep(0.1)
        assert status.state == "paused" and [i.state for i in status.sources[0].items] == ["pending", "pending"]
        events = [e.event_type async for e in handle.fetch_history_events()]
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events
        await handle.signal(Aggregation.resume)
        result = await handle.result()
    assert result.completed == ["weather"]


async def test_an_answer_over_the_item_limit_fails_that_item_alone(dev_client: Client, task_queue: str) -> None:
    result = await run(
        dev_client, task_queue, "Weather in Seattle", sql="SELECT substr(hex(zeroblob(20000)), 1, 20000) AS v"
    )
    database = source(result, "database")
    assert result.completed == ["weather"] and result.failed == ["database"]
    assert database.items[0].result is None and database.items[0].error.startswith(
        "McpResultTooLarge: database.read_query answered 20,013 bytes, "
        "over the 16,384 bytes an aggregate keeps per item"
    )
