"""What the engine costs: the order saga on the step runner against the same activities in
a plain hand-written Temporal workflow, side by side in one run.

    python -m bench.engine [--sagas 500] [--in-flight 50] [--rounds 5]

Both run on one embedded dev server and one worker as worker.py builds it (its defaults:
local steps, the unsandboxed runner), against one application database, taking turns in
rounds so that a change of the machine's load falls on both alike. Reported: W1 p50/p95
latency of one saga alone and sagas/s with ``--in-flight`` at once (the median of the
rounds), and the engine's ratios to the plain workflow: p50 latency (the engine adds what
is above 1.00) and throughput (the engine takes what is below 1.00); a third row runs the
plain workflow with the order saga's two patches (bench/engine_workflow.py), to tell what
they cost from what the step runner costs.
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
from pathlib import Path

from bench.engine_workflow import PatchedPlainOrderSaga, PlainOrderSaga
from bench.peers import Engine, measure_round
from sagaworks.activities.db import Database
from sagaworks.activities.orders import seed_inventory
from sagaworks.client.devserver import start_embedded
from sagaworks.contracts.orders import OrderInput, order_workflow_id
from sagaworks.worker import running_worker
from sagaworks.workflows.order import OrderFulfillmentSaga


def new_order() -> OrderInput:
    return OrderInput(
        order_id=uuid.uuid4().hex[:16],
        customer_email="bench@example.com",
        items=[{"sku": "WIDGET-1", "quantity": 1, "unit_price_cents": 100}],  # type: ignore[list-item]  # pydantic validates the dict into an OrderLine
        shipping_address="1 Bench Street",
    )


async def main(sagas: int, in_flight: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = Database(f"sqlite:///{folder / 'app.db'}")
        seed_inventory(db, {"WIDGET-1": 10_000_000})
        task_queue = f"engine-{uuid.uuid4()}"
        async with (
            await start_embedded(db_file=folder / "temporal.db") as env,
            running_worker(
                env.client,
                db,
                task_queue=task_queue,
                extra_workflows=[PlainOrderSaga, PatchedPlainOrderSaga],
            ),
        ):

            def run(workflow: type) -> Engine:
                async def saga() -> None:
                    order = new_order()
                    start = workflow.run  # type: ignore[attr-defined]  # each workflow class benchmarked has its run method
                    await env.client.execute_workflow(
                        start, order, id=order_workflow_id(order.order_id), task_queue=task_queue
                    )

                return Engine(workflow.__name__, saga, fanout=None)

            engines = [run(OrderFulfillmentSaga), run(PlainOrderSaga), run(PatchedPlainOrderSaga)]
            for engine in engines:  # warm-up: connections, caches, imports
                for _ in range(10):
                    await engine.saga()
            for round_ in range(rounds):
                # Each round in another order: none always runs first or last.
                for engine in engines[round_ % len(engines) :] + engines[: round_ % len(engines)]:
                    await measure_round(engine, sagas // rounds, min(sagas, 200) // rounds, in_flight, [])
        db.dispose()
    print(
        f"\nW1: {sagas} order sagas, {in_flight} in flight, {rounds} rounds taking turns; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| workflow | W1 p50 ms | W1 p95 ms | W1 sagas/s | CPU ms/saga |")
    print("|---|---:|---:|---:|---:|")
    p50s, rates = [], []
    for engine in engines:
        ordered = sorted(engine.latencies)
        p50, p95 = statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000
        p50s.append(p50)
        rates.append(statistics.median(engine.rates))
        print(f"| {engine.name} | {p50:.1f} | {p95:.1f} | {rates[-1]:.0f} | {statistics.median(engine.cpu_ms):.0f} |")
    for at, plain in ((1, "plain"), (2, "plain with the same patches")):
        print(f"engine / {plain}: W1 p50 latency {p50s[0] / p50s[at]:.3f}, throughput {rates[0] / rates[at]:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sagas", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="turns each workflow takes (default %(default)s)")
    args = parser.parse_args()
    asyncio.run(main(args.sagas, args.in_flight, args.rounds))
