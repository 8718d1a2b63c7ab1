"""sagaworks against its peers, same work, same machine, one run (`make bench-peers`).

    python -m bench.peers [--sagas 500] [--in-flight 50] [--fanout 100 1000]

Needs the optional ``bench`` extra (LangGraph with its SQLite checkpointer, DBOS Transact).

- W1: a 5-step saga whose steps each do a small real database write: every engine runs
  five steps that each insert one row with sqlite3 (sagaworks: ``StepsBench``, its steps
  local activities), and sagaworks also runs its own ``OrderFulfillmentSaga`` (the SKU check
  and five steps, each an idempotent SQLAlchemy transaction). Reported: p50/p95 latency of
  one saga alone, and sagas/s with ``--in-flight`` running at once.
- W2: a fan-out of N steps (each a small write) then one aggregate step: wall time.

Every engine persists its progress durably: sagaworks in the embedded server's SQLite
history, LangGraph in its SQLite checkpointer, DBOS in its SQLite system database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import operator
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from temporalio import activity

from bench.order_saga import cpu_seconds
from bench.peer_workflows import FanOutBench, StepsBench
from sagaworks.activities.db import Database
from sagaworks.activities.orders import seed_inventory
from sagaworks.client.devserver import start_embedded
from sagaworks.contracts.orders import OrderInput, order_workflow_id
from sagaworks.worker import running_worker
from sagaworks.workflows.order import OrderFulfillmentSaga

STEPS = 5


def write_row(db_path: Path, run_id: str, step: str) -> None:
    """The unit of work of every step: one small durable write."""
    with sqlite3.connect(db_path, timeout=30, isolation_level=None) as conn:
        # OR IGNORE: a step that runs again after a crash (at-least-once) writes nothing twice.
        conn.execute("INSERT OR IGNORE INTO steps (run_id, step) VALUES (?, ?)", (run_id, step))


def make_app_db(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS steps (run_id TEXT, step TEXT, PRIMARY KEY (run_id, step))")


RunOne = Callable[[], Awaitable[None]]
FanOut = Callable[[int], Awaitable[None]]


@dataclass
class Engine:
    """An engine set up and ready: one W1 saga, one W2 fan-out of n."""

    name: str
    saga: RunOne
    fanout: FanOut | None
    """None: the engine's fan-out is another row's."""
    latencies: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    """CPU per saga of this process and its children (a Temporal server, a process pool)."""
    fanout_s: dict[int, list[float]] = field(default_factory=dict)


async def measure_round(engine: Engine, sagas: int, alone: int, in_flight: int, fanouts: list[int]) -> None:
    """One round: ``alone`` sagas one at a time, ``sagas`` with ``in_flight`` at once, each fan-out."""
    for _ in range(alone):
        start = time.perf_counter()
        await engine.saga()
        engine.latencies.append(time.perf_counter() - start)
    semaphore = asyncio.Semaphore(in_flight)

    async def bounded() -> None:
        async with semaphore:
            await engine.saga()

    start, cpu_start = time.perf_counter(), sum(cpu_seconds())
    await asyncio.gather(*(bounded() for _ in range(sagas)))
    engine.rates.append(sagas / (time.perf_counter() - start))
    engine.cpu_ms.append((sum(cpu_seconds()) - cpu_start) / sagas * 1000)
    if engine.fanout is None:
        return
    for n in fanouts:
        start = time.perf_counter()
        await engine.fanout(n)
        engine.fanout_s.setdefault(n, []).append(time.perf_counter() - start)


# --- plain asyncio: the floor -------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_asyncio(folder: Path) -> AsyncIterator[list[Engine]]:
    db = folder / "asyncio.db"
    make_app_db(db)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(32) as pool:

        async def saga() -> None:
            run_id = uuid.uuid4().hex
            for step in range(STEPS):
                await loop.run_in_executor(pool, write_row, db, run_id, f"s{step}")

        async def fanout(n: int) -> None:
            run_id = uuid.uuid4().hex
            await asyncio.gather(*(loop.run_in_executor(pool, write_row, db, run_id, f"f{i}") for i in range(n)))
            await loop.run_in_executor(pool, write_row, db, run_id, "aggregate")

        yield [Engine("plain asyncio (floor)", saga, fanout)]


# --- sagaworks -------------------------------------------------------------------------------


@activity.defn
def bench_write(args: list[str]) -> None:
    """A fan-out step: one small durable write."""
    write_row(Path(args[0]), args[1], args[2])


@contextlib.asynccontextmanager
async def open_sagaworks(folder: Path) -> AsyncIterator[list[Engine]]:
    db = Database(f"sqlite:///{folder / 'sagaworks-app.db'}")
    seed_inventory(db, {"WIDGET-1": 10_000_000})
    fan_db = folder / "sagaworks-fanout.db"
    make_app_db(fan_db)
    task_queue = f"peers-{uuid.uuid4()}"
    async with await start_embedded(db_file=folder / "temporal.db") as env:
        # The worker as worker.py builds it, with its defaults (runner, threads, processes).
        async with running_worker(
            env.client,
            db,
            task_queue=task_queue,
            extra_workflows=[StepsBench, FanOutBench],
            extra_activities=[bench_write],
        ):

            async def steps() -> None:
                await env.client.execute_workflow(
                    StepsBench.run, [str(fan_db), STEPS], id=f"steps-{uuid.uuid4()}", task_queue=task_queue
                )

            async def order_saga() -> None:
                order = OrderInput(
                    order_id=uuid.uuid4().hex[:16],
                    customer_email="bench@example.com",
                    items=[{"sku": "WIDGET-1", "quantity": 1, "unit_price_cents": 100}],  # type: ignore[list-item]  # pydantic validates the dict into an OrderLine
                    shipping_address="1 Bench Street",
                )
                await env.client.execute_workflow(
                    OrderFulfillmentSaga.run, order, id=order_workflow_id(order.order_id), task_queue=task_queue
                )

            async def fanout(n: int) -> None:
                await env.client.execute_workflow(
                    FanOutBench.run, [str(fan_db), n], id=f"fan-{uuid.uuid4()}", task_queue=task_queue
                )

            yield [
                Engine("sagaworks, the same steps (StepsBench, local activities)", steps, fanout),
                # The fan-out is the same workflow as the row above's: measured there.
                Engine("sagaworks OrderFulfillmentSaga (six SQLAlchemy transactions)", order_saga, fanout=None),
            ]
    db.dispose()


# --- LangGraph + SQLite checkpointer -------------------------------------------------------


class SagaState(TypedDict):
    run_id: str
    done: Annotated[list[str], operator.add]


@contextlib.asynccontextmanager
async def open_langgraph(folder: Path) -> AsyncIterator[list[Engine]]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    db = folder / "langgraph-app.db"
    make_app_db(db)

    def step_node(name: str) -> Callable[[SagaState], Awaitable[dict[str, list[str]]]]:
        async def node(state: SagaState) -> dict[str, list[str]]:
            await asyncio.to_thread(write_row, db, state["run_id"], name)
            return {"done": [name]}

        return node

    saga_graph = StateGraph(SagaState)
    previous = START
    for step in range(STEPS):
        # Any: langgraph's node protocols do not type an async function returning a partial update.
        node: Any = step_node(f"s{step}")
        saga_graph.add_node(f"s{step}", node)
        saga_graph.add_edge(previous, f"s{step}")
        previous = f"s{step}"
    saga_graph.add_edge(previous, END)

    class FanState(TypedDict):
        run_id: str
        n: int
        done: Annotated[list[str], operator.add]

    async def one(state: dict[str, Any]) -> dict[str, list[str]]:
        await asyncio.to_thread(write_row, db, state["run_id"], state["name"])
        return {"done": [state["name"]]}

    async def aggregate(state: FanState) -> dict[str, list[str]]:
        await asyncio.to_thread(write_row, db, state["run_id"], "aggregate")
        return {"done": ["aggregate"]}

    fan_graph = StateGraph(FanState)
    # Any: Send() hands this node a dict, not the graph's FanState.
    one_node: Any = one
    fan_graph.add_node("one", one_node)
    fan_graph.add_node("aggregate", aggregate)
    fan_graph.add_conditional_edges(
        START, lambda s: [Send("one", {"run_id": s["run_id"], "name": f"f{i}"}) for i in range(s["n"])]
    )
    fan_graph.add_edge("one", "aggregate")
    fan_graph.add_edge("aggregate", END)

    async with AsyncSqliteSaver.from_conn_string(str(folder / "langgraph-checkpoints.db")) as saver:
        saga_app = saga_graph.compile(checkpointer=saver)
        fan_app = fan_graph.compile(checkpointer=saver)

        async def saga() -> None:
            run_id = uuid.uuid4().hex
            await saga_app.ainvoke({"run_id": run_id, "done": []}, {"configurable": {"thread_id": run_id}})

        async def fanout(n: int) -> None:
            run_id = uuid.uuid4().hex
            await fan_app.ainvoke(
                {"run_id": run_id, "n": n, "done": []},
                {"configurable": {"thread_id": run_id}, "recursion_limit": 10},
            )

        yield [Engine("LangGraph + SQLite checkpointer", saga, fanout)]


# --- DBOS Transact on SQLite ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_dbos(folder: Path) -> AsyncIterator[list[Engine]]:
    from dbos import DBOS

    db = folder / "dbos-app.db"
    make_app_db(db)
    DBOS(
        config={
            "name": "peers-bench",
            "system_database_url": f"sqlite:///{folder / 'dbos-system.db'}",
            "log_level": "WARNING",
        }
    )

    @DBOS.step()
    async def dbos_step(run_id: str, name: str) -> None:
        await asyncio.to_thread(write_row, db, run_id, name)

    @DBOS.workflow()
    async def dbos_saga(run_id: str) -> None:
        for step in range(STEPS):
            await dbos_step(run_id, f"s{step}")

    @DBOS.workflow()
    async def dbos_fanout(run_id: str, n: int) -> None:
        await asyncio.gather(*(dbos_step(run_id, f"f{i}") for i in range(n)))
        await dbos_step(run_id, "aggregate")

    DBOS.launch()
    try:

        async def saga() -> None:
            handle = await DBOS.start_workflow_async(dbos_saga, uuid.uuid4().hex)
            await handle.get_result()

        async def fanout(n: int) -> None:
            handle = await DBOS.start_workflow_async(dbos_fanout, uuid.uuid4().hex, n)
            await handle.get_result()

        yield [Engine("DBOS Transact on SQLite", saga, fanout)]
    finally:
        DBOS.destroy()


ENGINES = {
    "asyncio": open_asyncio,
    "sagaworks": open_sagaworks,
    "langgraph": open_langgraph,
    "dbos": open_dbos,
}


async def main(sagas: int, in_flight: int, fanouts: list[int], engines: list[str], rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with contextlib.AsyncExitStack() as stack:
            opened = []
            for name in engines:
                folder = Path(tmp) / name
                folder.mkdir()
                opened += await stack.enter_async_context(ENGINES[name](folder))
            for engine in opened:  # warm-up: connections, caches, imports
                for _ in range(10):
                    await engine.saga()
            # Every engine stays up and the rounds take turns, so a change of the machine's
            # load (it is shared) falls on every engine alike.
            for _ in range(rounds):
                for engine in opened:
                    await measure_round(engine, sagas // rounds, min(sagas, 200) // rounds, in_flight, fanouts)
    floor = opened[0]
    print(
        f"\nW1: {sagas} five-step sagas, {in_flight} in flight; W2: fan-out then aggregate; "
        f"{rounds} rounds taking turns (sagas/s and W2: median of the rounds). "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f}\n"
    )
    fan_cols = " | ".join(f"W2 N={n} s" for n in fanouts)
    print(f"| engine | W1 p50 ms | W1 p95 ms | ms/step over floor (p50) | W1 sagas/s | W1 CPU ms/saga | {fan_cols} |")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * len(fanouts))
    floor_p50 = statistics.median(floor.latencies) * 1000
    for engine in opened:
        ordered = sorted(engine.latencies)
        p50, p95 = statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000
        fans = " | ".join(
            f"{statistics.median(engine.fanout_s[n]):.2f}" if n in engine.fanout_s else "-" for n in fanouts
        )
        print(
            f"| {engine.name} | {p50:.1f} | {p95:.1f} | {(p50 - floor_p50) / STEPS:.1f} | "
            f"{statistics.median(engine.rates):.0f} | {statistics.median(engine.cpu_ms):.0f} | {fans} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sagas", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--fanout", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--rounds", type=int, default=5, help="turns each engine takes (default %(default)s)")
    args = parser.parse_args()
    asyncio.run(main(args.sagas, args.in_flight, args.fanout, args.engines, args.rounds))
