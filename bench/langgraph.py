"""The same five-node LangGraph graph on LangGraph and on sagaworks, side by side.

    python -m bench.langgraph [--runs 50] [--in-flight 10]

Needs the ``bench`` extra (langgraph-checkpoint-sqlite) and the ``langgraph`` extra.

Each node does one small durable write (an sqlite3 INSERT). LangGraph runs the compiled
graph with its SQLite checkpointer and ``durability="sync"`` (a checkpoint written before
each next step); sagaworks runs the very same graph object through ``sagaworks.langgraph``
(each node an activity, the history in the embedded server's SQLite file). Reported for
each: p50/p95 latency of one run alone, the per-node overhead (p50 minus the five node
functions called directly, over five) and runs/s with ``--in-flight`` at once.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel
from temporalio.worker import Worker

from sagaworks.client.devserver import start_embedded
from sagaworks.langgraph import register_graph

NODES = ("validate", "parse", "chunk", "extract", "store")


class BenchState(TypedDict, total=False):
    run_id: str
    db: str
    done: list[str]


class BenchInput(BaseModel):
    run_id: str
    db: str


def _node(name: str) -> Callable[[BenchState], dict[str, Any]]:
    def node(state: BenchState) -> dict[str, Any]:
        with sqlite3.connect(state["db"], timeout=30, isolation_level=None) as conn:
            conn.execute("INSERT OR IGNORE INTO steps (run_id, step) VALUES (?, ?)", (state["run_id"], name))
        return {"done": [*state.get("done", []), name]}

    node.__name__ = name
    return node


def build() -> StateGraph:
    graph = StateGraph(BenchState)
    for name in NODES:
        # Any: langgraph's node protocols do not type a plain function returning a partial update.
        node: Any = _node(name)
        graph.add_node(name, node)
    for a, b in zip((START, *NODES), (*NODES, END), strict=True):
        graph.add_edge(a, b)
    return graph


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(one: Callable[[], Awaitable[None]], runs: int, in_flight: int) -> tuple[list[float], float]:
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        await one()
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    pending = runs

    async def lane() -> None:
        nonlocal pending
        while pending > 0:
            pending -= 1
            await one()

    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return latencies, runs / (time.perf_counter() - start)


async def main(runs: int, in_flight: int) -> None:
    graph = build()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "app.db"
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE steps (run_id TEXT, step TEXT, PRIMARY KEY (run_id, step))")

        bare = []
        for _ in range(runs):
            state: BenchState = {"run_id": uuid.uuid4().hex, "db": str(db)}
            start = time.perf_counter()
            for name in NODES:
                state.update(_node(name)(state))  # type: ignore[typeddict-item]  # each node returns a partial update of the state
            bare.append(time.perf_counter() - start)

        rows: list[tuple[str, list[float], float]] = []
        pool = ThreadPoolExecutor(in_flight)
        with SqliteSaver.from_conn_string(str(folder / "checkpoints.db")) as saver:
            compiled = graph.compile(checkpointer=saver)

            def invoke() -> None:
                run_id = uuid.uuid4().hex
                compiled.invoke(
                    {"run_id": run_id, "db": str(db)}, {"configurable": {"thread_id": run_id}}, durability="sync"
                )

            async def langgraph_one() -> None:
                await asyncio.get_running_loop().run_in_executor(pool, invoke)

            rows.append(("LangGraph + SqliteSaver (sync)", *await _measure(langgraph_one, runs, in_flight)))

        family = register_graph("bench-graph", graph, input_model=BenchInput)
        async with await start_embedded(db_file=folder / "temporal.db") as env:
            queue = f"bench-{uuid.uuid4().hex}"
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[family.workflow],
                activities=family.activities,
                max_concurrent_activities=64,
            ):

                async def sagaworks_one() -> None:
                    await env.client.execute_workflow(
                        family.workflow.run,
                        BenchInput(run_id=uuid.uuid4().hex, db=str(db)),
                        id=f"bench-{uuid.uuid4().hex}",
                        task_queue=queue,
                    )

                await sagaworks_one()  # warm up the worker's first workflow task
                rows.append(
                    ("sagaworks.langgraph (embedded server, SQLite)", *await _measure(sagaworks_one, runs, in_flight))
                )

    bare_ms = statistics.median(bare) * 1000
    print(
        f"five-node graph, {runs} runs each, {in_flight} in flight; {platform.python_version()} on {platform.machine()}"
    )
    print(f"node functions called directly: {bare_ms:.2f} ms per run")
    print(f"{'engine':<48} {'p50 ms':>8} {'p95 ms':>8} {'per-node overhead ms':>21} {'runs/s':>8}")
    for name, latencies, rate in rows:
        p50 = statistics.median(latencies) * 1000
        overhead = (p50 - bare_ms) / len(NODES)
        print(f"{name:<48} {p50:8.1f} {_percentile(latencies, 0.95) * 1000:8.1f} {overhead:21.2f} {rate:8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs of each engine (default 50)")
    parser.add_argument("--in-flight", type=int, default=10, help="runs at once for throughput (default 10)")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.in_flight))
