"""MCP benchmark: the aggregation through Temporal vs. the same tool calls made directly.

    python -m bench.mcp [--runs 15] [--calls 50]

Both sides use the servers of the default configuration (weather, files, database) and
the same question, which names two cities, one search term and one table (five tool calls
plus the filesystem's root lookup):

- ``direct``: an MCP client per server (the SDK v2 ``Client`` over stdio), the same calls
  fanned out with ``asyncio.gather``; the weather connection is reused across runs, as
  the worker's pool reuses it, and the legacy-protocol servers (files, database) are
  spawned per call as the pool does for them;
- ``aggregate``: the ``aggregate`` workflow on the embedded server, a worker with the MCP
  plugin in this process (listing each server's tools once per run, then the calls).

Reported: p50/p95 of one aggregation, and the overhead of one tool call through Temporal
(``saga mcp call``'s workflow: list the tools, validate, call) over a direct call on a warm
connection of our weather server.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from mcp import Client
from temporalio.worker import Worker

from sagaworks.activities.mcp_servers import load_config, mcp_plugins
from sagaworks.client.devserver import start_embedded
from sagaworks.contracts.aggregate import AggregateInput
from sagaworks.contracts.mcp import McpCallInput
from sagaworks.workflows.aggregate import Aggregation
from sagaworks.workflows.mcp_call import McpToolCall

QUESTION = "Weather in Seattle and San Francisco, the saga files, and our customers"
WEATHER = {"city": "Seattle", "date": "2015-06-01"}


async def timed(runs: int, once: Callable[[], Awaitable[Any]]) -> list[float]:
    await once()  # warm up: spawn, connect, import
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await once()
        samples.append(time.perf_counter() - start)
    return samples


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def fresh_call(server: str, tool: str, arguments: dict[str, Any]) -> Any:
    async with load_config().servers[server].client() as client:
        return await client.call_tool(tool, arguments)


async def direct_aggregation(weather: Client) -> None:
    async def files() -> None:
        async with load_config().servers["files"].client() as client:
            root = await client.call_tool("list_allowed_directories", {})
            directory = root.content[0].text.splitlines()[-1].strip()  # type: ignore[union-attr]  # the filesystem server answers text
            await client.call_tool("search_files", {"path": directory, "pattern": "**/*saga*"})

    await asyncio.gather(
        weather.call_tool("get_weather", {"city": "Seattle"}),
        weather.call_tool("get_weather", {"city": "San Francisco"}),
        files(),
        fresh_call("database", "read_query", {"query": "SELECT * FROM customers LIMIT 20"}),
    )


async def main(runs: int, calls: int) -> None:
    config = load_config()
    async with config.servers["weather"].client() as weather:
        direct = await timed(runs, lambda: direct_aggregation(weather))
        direct_call = await timed(calls, lambda: weather.call_tool("get_weather", WEATHER))

    async with await start_embedded() as env:
        queue = f"bench-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=queue, workflows=[Aggregation, McpToolCall], plugins=mcp_plugins()):

            async def aggregate() -> None:
                request = AggregateInput(request_id=uuid.uuid4().hex, question=QUESTION)
                result = await env.client.execute_workflow(
                    Aggregation.run, request, id=f"b-{uuid.uuid4()}", task_queue=queue
                )
                assert result.completed == ["weather", "files", "database"], result

            async def one_call() -> None:
                request = McpCallInput(server="weather", tool="get_weather", arguments=WEATHER)
                await env.client.execute_workflow(McpToolCall.run, request, id=f"b-{uuid.uuid4()}", task_queue=queue)

            durable = await timed(runs, aggregate)
            durable_call = await timed(calls, one_call)

    print(f"# MCP benchmark ({platform.machine()}, {platform.python_version()}; {runs} aggregations, {calls} calls)")
    print(f"{'':34} {'p50':>9} {'p95':>9}")
    for name, samples in (
        ("aggregation, direct MCP calls", direct),
        ("aggregation, aggregate workflow", durable),
        ("one call, direct (warm)", direct_call),
        ("one call, mcp-call workflow", durable_call),
    ):
        p50, p95 = quantiles(samples)
        print(f"{name:34} {p50 * 1000:7.1f}ms {p95 * 1000:7.1f}ms")
    overhead = quantiles(durable_call)[0] - quantiles(direct_call)[0]
    print(
        f"overhead of one call through Temporal (p50): {overhead * 1000:.1f} ms "
        "(two activities: list tools + call, one workflow start and result)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.calls))
