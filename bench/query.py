"""Query-orchestration benchmark: QueryWorkflow vs. the three agents as plain functions.

    python -m bench.query [--runs 100] [--concurrency 20]

Both sides answer the same questions over the same sample data in a fresh SQLite
database, with the offline NLP provider:

- ``plain functions``: nlp agent -> data agent -> viz agent called one after the other in
  one thread (the floor: parsing, the guarded query, the chart rendered to SVG);
- ``QueryWorkflow``: the embedded dev server and the shipped worker (``running_worker`` with
  its defaults: the unsandboxed runner); each run adds the pre-flight health check and the
  three agents as local activities (one workflow task), the shared breakers' database
  reads, and Temporal's persistence;
- ``QueryWorkflow, sandboxed``: the same on a second task queue served by the same worker
  builder on the sandboxed runner (what the tests run), to show what the sandbox costs.

All three are measured interleaved, run for run, so they see the same machine load.

Reported: p50/p95 of one run alone, runs/s with ``--concurrency`` in flight, and the
orchestration overhead per run (p50 - floor p50).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid

from sagaworks.activities.db import Database
from sagaworks.activities.query.activities import QuerySettings
from sagaworks.activities.query.agents import DataAgent, OfflinePlanner, nlp_agent, viz_agent
from sagaworks.activities.query.dataset import SAMPLE_TABLES, DataSource
from sagaworks.client.devserver import start_embedded
from sagaworks.contracts.query import DataInput, PlanInput, QueryInput, QueryResult, VizInput, query_workflow_id
from sagaworks.worker import running_worker

QUESTIONS = [
    "average temperature by month in 2014",
    "top 10 cars by horsepower",
    "average price by symbol",
    "number of days by weather",
    "average mpg by origin",
]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94]


class Floor:
    """The three agents called one after the other in this thread."""

    def __init__(self, db_url: str) -> None:
        self.data = DataAgent(DataSource(db_url, SAMPLE_TABLES, sample=True))
        self.planner = OfflinePlanner()
        self.catalog = self.data.catalog()

    def run(self, i: int) -> float:
        started = time.perf_counter()
        planned = nlp_agent(
            self.planner, self.data, PlanInput(question=QUESTIONS[i % len(QUESTIONS)], catalog=self.catalog)
        )
        rows = self.data.run(DataInput(plan=planned.plan))
        viz_agent(VizInput(plan=planned.plan, columns=rows.columns, rows=rows.rows))
        return (time.perf_counter() - started) * 1000


async def measure(tmp: str, runs: int, concurrency: int) -> tuple[list[float], list[float], list[float], float, float]:
    """Floor, workflow and sandboxed workflow runs interleaved (so all see the same
    machine load), then the throughput of each: the floor one at a time, the workflow
    ``concurrency`` in flight."""
    floor = Floor(f"sqlite:///{tmp}/plain.db")
    async with await start_embedded() as env:
        db = Database(f"sqlite:///{tmp}/app.db")
        task_queue = f"bench-{uuid.uuid4()}"
        sandboxed_queue = f"{task_queue}-sandboxed"
        async with (
            running_worker(env.client, db, task_queue=task_queue, activity_threads=16, settings=[QuerySettings()]),
            running_worker(
                env.client,
                db,
                task_queue=sandboxed_queue,
                activity_threads=16,
                settings=[QuerySettings()],
                runner="sandboxed",
                cpu_processes=0,
            ),
        ):

            async def one(i: int, queue: str = task_queue) -> float:
                request = QueryInput(question=QUESTIONS[i % len(QUESTIONS)], request_id=uuid.uuid4().hex[:16])
                started = time.perf_counter()
                result = await env.client.execute_workflow(
                    "QueryWorkflow",
                    request,
                    id=query_workflow_id(request.request_id),
                    task_queue=queue,
                    result_type=QueryResult,
                )
                assert result.chart.kind != "table" and not result.fallbacks, result.fallbacks
                return (time.perf_counter() - started) * 1000

            for i in range(5):  # warm-up: the renderer, the catalog, the sandbox
                floor.run(i)
                await one(i)
                await one(i, sandboxed_queue)
            floor_ms, workflow_ms, sandboxed_ms = [], [], []
            for i in range(runs):
                floor_ms.append(floor.run(i))
                workflow_ms.append(await one(i))
                sandboxed_ms.append(await one(i, sandboxed_queue))
            started = time.perf_counter()
            for i in range(runs):
                floor.run(i)
            floor_rate = runs / (time.perf_counter() - started)
            semaphore = asyncio.Semaphore(concurrency)

            async def bounded(i: int) -> float:
                async with semaphore:
                    return await one(i)

            started = time.perf_counter()
            await asyncio.gather(*(bounded(i) for i in range(runs)))
            throughput = runs / (time.perf_counter() - started)
        db.dispose()
    floor.data.dispose()
    return floor_ms, workflow_ms, sandboxed_ms, floor_rate, throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        floor, alone, sandboxed, floor_rate, throughput = asyncio.run(measure(tmp, args.runs, args.concurrency))
    floor_p50, floor_p95 = _percentiles(floor)
    p50, p95 = _percentiles(alone)
    boxed_p50, boxed_p95 = _percentiles(sandboxed)
    overheads = sorted(w - f for f, w in zip(floor, alone, strict=True))
    load = os.getloadavg()[0]
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, {args.runs} runs, "
        f"offline NLP provider, {len(QUESTIONS)} questions in turn"
    )
    print(f"| engine | p50 ms | p95 ms | runs/s ({args.concurrency} in flight) |")
    print("|---|---:|---:|---:|")
    print(f"| plain functions (floor) | {floor_p50:.1f} | {floor_p95:.1f} | {floor_rate:.1f} (one at a time) |")
    print(f"| QueryWorkflow | {p50:.1f} | {p95:.1f} | {throughput:.1f} |")
    print(f"| QueryWorkflow, sandboxed runner | {boxed_p50:.1f} | {boxed_p95:.1f} | - |")
    print(
        f"orchestration overhead per run: p50 {p50 - floor_p50:.1f} ms; median of paired differences "
        f"{statistics.median(overheads):.1f} ms; sandboxed p50 {boxed_p50 - floor_p50:.1f} ms; "
        f"load average during the run {load:.1f}"
    )


if __name__ == "__main__":
    main()
