"""Order-saga benchmark: sagaworks on the embedded server vs. the same steps in plain asyncio.

    python -m bench.order_saga [--sagas 200] [--concurrency 20]

Every engine runs the same five database-backed steps of the order saga against its own
fresh SQLite application database, side by side in one run:

- ``asyncio``: the activity functions awaited one after the other (the floor);
- ``sagaworks (shipped default)``: the embedded dev server with our flags and a persisted
  SQLite history, and the worker as worker.py builds it (``running_worker`` with its
  defaults: local steps, the unsandboxed runner);
- the levers, each the default with one thing changed: remote steps (``local_steps``
  false), the passthrough and the sandboxed workflow runner, and the stock dev server
  (its default dynamic config, to show what our flags buy).

Reported: p50/p95 latency of one saga run alone, sagas/s with ``--concurrency`` in flight,
and the orchestration overhead per step ((p50 - floor p50) / 5).
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
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

from sagaworks.activities.db import Database
from sagaworks.activities.orders import OrderActivities, seed_inventory
from sagaworks.client.devserver import start_embedded
from sagaworks.contracts.orders import (
    AccountInput,
    ChargeInput,
    LabelInput,
    NotificationInput,
    OrderInput,
    ReserveInput,
    order_workflow_id,
)
from sagaworks.worker import running_worker
from sagaworks.workflows.order import OrderFulfillmentSaga

STEPS = 5
STOCK = {"WIDGET-1": 10_000_000}


def new_order(local_steps: bool | None = None) -> OrderInput:
    return OrderInput(
        order_id=f"b-{uuid.uuid4().hex[:16]}",
        customer_email="bench@example.com",
        items=[{"sku": "WIDGET-1", "quantity": 1, "unit_price_cents": 100}],  # type: ignore[list-item]  # pydantic validates the dict into an OrderLine
        shipping_address="1 Bench Street",
        local_steps=local_steps,
    )


@dataclass
class Figures:
    engine: str
    p50_ms: float
    p95_ms: float
    sagas_per_s: float
    worker_cpu_ms: float
    """CPU of this process (client and worker) per saga."""
    server_cpu_ms: float
    """CPU of its child processes (the Temporal server) per saga."""


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process, and of its live child processes (the dev server)."""
    children = 0.0
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # ppid
            children += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return time.process_time(), children


async def measure(engine: str, run_one: Callable[[], Awaitable[None]], sagas: int, concurrency: int) -> Figures:
    for _ in range(5):  # warm-up: connections, caches, workflow sandbox
        await run_one()
    latencies = []
    for _ in range(sagas):
        start = time.perf_counter()
        await run_one()
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    semaphore = asyncio.Semaphore(concurrency)

    async def bounded() -> None:
        async with semaphore:
            await run_one()

    start, (own_start, server_start) = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*(bounded() for _ in range(sagas)))
    elapsed, (own, server) = time.perf_counter() - start, cpu_seconds()
    return Figures(
        engine,
        p50_ms=statistics.median(latencies) * 1000,
        p95_ms=latencies[int(len(latencies) * 0.95) - 1] * 1000,
        sagas_per_s=sagas / elapsed,
        worker_cpu_ms=(own - own_start) / sagas * 1000,
        server_cpu_ms=(server - server_start) / sagas * 1000,
    )


def fresh_db(folder: Path, name: str) -> Database:
    db = Database(f"sqlite:///{folder / name}.db")
    seed_inventory(db, STOCK)
    return db


async def bench_asyncio(folder: Path, executor: ThreadPoolExecutor, sagas: int, concurrency: int) -> Figures:
    acts = OrderActivities(fresh_db(folder, "asyncio"))
    env = ActivityEnvironment()
    loop = asyncio.get_running_loop()

    async def run_one() -> None:
        order = new_order()
        wid = order_workflow_id(order.order_id)

        def common(step: str) -> dict[str, Any]:
            return {"key": f"{wid}:{step}", "order_id": order.order_id}

        steps = [
            (acts.create_customer_account, AccountInput(email=order.customer_email, **common("a"))),
            (acts.charge_payment, ChargeInput(amount_cents=order.amount_cents, **common("c"))),
            (acts.send_notification, NotificationInput(recipient=order.customer_email, **common("n"))),
            (acts.reserve_inventory, ReserveInput(items=order.items, **common("r"))),
            (acts.create_shipping_label, LabelInput(address=order.shipping_address, **common("l"))),
        ]
        for fn, arg in steps:
            # ActivityEnvironment.run's parameters (a ParamSpec) do not reach through run_in_executor.
            await loop.run_in_executor(executor, env.run, fn, arg)  # type: ignore[arg-type]

    return await measure("plain asyncio (floor)", run_one, sagas, concurrency)


async def bench_temporal(
    engine: str,
    folder: Path,
    sagas: int,
    concurrency: int,
    *,
    tuned: bool = True,
    local_steps: bool | None = None,
    runner: str | None = None,
) -> Figures:
    task_queue = f"bench-{uuid.uuid4()}"
    name = uuid.uuid4().hex[:8]
    db = fresh_db(folder, name)
    async with await start_embedded(db_file=folder / f"{name}-temporal.db", tuned=tuned) as env:
        async with running_worker(env.client, db, task_queue=task_queue, runner=runner):

            async def run_one() -> None:
                order = new_order(local_steps)
                await env.client.execute_workflow(
                    OrderFulfillmentSaga.run, order, id=order_workflow_id(order.order_id), task_queue=task_queue
                )

            return await measure(engine, run_one, sagas, concurrency)


async def main(sagas: int, concurrency: int, levers: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=32) as executor:
        folder = Path(tmp)
        rows = [await bench_asyncio(folder, executor, sagas, concurrency)]
        rows.append(await bench_temporal("sagaworks (shipped default)", folder, sagas, concurrency))
        if levers:
            rows += [
                await bench_temporal("remote steps", folder, sagas, concurrency, local_steps=False),
                await bench_temporal("passthrough runner", folder, sagas, concurrency, runner="passthrough"),
                await bench_temporal("sandboxed runner", folder, sagas, concurrency, runner="sandboxed"),
                await bench_temporal("stock dev server", folder, sagas, concurrency, tuned=False),
            ]
    floor = rows[0]
    print(
        f"\n{sagas} sagas of {STEPS} steps, {concurrency} in flight for throughput; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print(
        "| engine | p50 ms | p95 ms | overhead ms/step (p50) | sagas/s | CPU ms/saga worker + server | p50 vs floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        overhead = (row.p50_ms - floor.p50_ms) / STEPS
        print(
            f"| {row.engine} | {row.p50_ms:.1f} | {row.p95_ms:.1f} | {overhead:.1f} | {row.sagas_per_s:.1f} | "
            f"{row.worker_cpu_ms:.0f} + {row.server_cpu_ms:.0f} | {row.p50_ms / floor.p50_ms:.1f}x |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sagas", type=int, default=200, help="sagas per measurement (default %(default)s)")
    parser.add_argument(
        "--concurrency", type=int, default=20, help="sagas in flight for throughput (default %(default)s)"
    )
    parser.add_argument("--no-levers", action="store_true", help="only the floor and the shipped default")
    args = parser.parse_args()
    asyncio.run(main(args.sagas, args.concurrency, not args.no_levers))
