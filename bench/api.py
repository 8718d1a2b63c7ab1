"""API benchmark: start-to-accepted latency of ``POST /api/workflows/order`` under load.

    python -m bench.api [--clients 50] [--starts 20]

A real stack on this machine: the embedded dev server, the real worker (in this process)
and the API as its own process (``python -m client.api``, uvicorn, bearer token on).
``--clients`` clients each send ``--starts`` order starts one after the other; a start's
latency is from sending the request to receiving its 201 (Temporal has recorded the
workflow: what "accepted" means). Every started saga is then awaited to completion, so
the figure is of runs that really happen, not of requests dropped on the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from sagaworks.activities.db import Database
from sagaworks.activities.orders import seed_inventory
from sagaworks.client.devserver import start_embedded
from sagaworks.worker import running_worker
from tests.ports import free_port

SKU = "WIDGET-1"


def order() -> dict[str, object]:
    return {
        "order_id": f"api-{uuid.uuid4().hex[:16]}",
        "customer_email": "bench@example.com",
        "items": [{"sku": SKU, "quantity": 1, "unit_price_cents": 100}],
        "shipping_address": "1 Bench Street",
    }


async def wait_healthy(http: httpx.AsyncClient, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (await http.get("/api/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not become healthy")
        await asyncio.sleep(0.2)


async def client_run(url: str, token: str, starts: int, latencies: list[float], ids: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
        for _ in range(starts):
            began = time.perf_counter()
            response = await http.post("/api/workflows/order", json=order())
            latencies.append((time.perf_counter() - began) * 1000)
            if response.status_code != 201:
                raise RuntimeError(f"start answered {response.status_code}: {response.text}")
            ids.append(response.json()["workflow_id"])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(clients: int, starts: int) -> None:
    token = uuid.uuid4().hex
    task_queue = f"bench-api-{uuid.uuid4()}"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'app.db'}")
        seed_inventory(db, {SKU: 10_000_000})
        env = await start_embedded(db_file=Path(tmp) / "temporal.db")
        address = env.client.service_client.config.target_host
        api = subprocess.Popen(
            [sys.executable, "-m", "sagaworks.client.api", "--port", str(port)],
            env={
                **os.environ,
                "TEMPORAL_ADDRESS": address,
                "SAGAWORKS_TASK_QUEUE": task_queue,
                "SAGAWORKS_API_TOKEN": token,
                "SAGAWORKS_LOG_LEVEL": "WARNING",
            },
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / "api.log", "wb"),  # noqa: SIM115
        )
        try:
            async with running_worker(env.client, db, task_queue=task_queue, activity_threads=16):
                url = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(base_url=url) as probe:
                    await wait_healthy(probe)
                # Warm up connections and code paths before measuring.
                await client_run(url, token, 3, [], [])
                latencies: list[float] = []
                ids: list[str] = []
                began = time.perf_counter()
                await asyncio.gather(*(client_run(url, token, starts, latencies, ids) for _ in range(clients)))
                elapsed = time.perf_counter() - began
                await asyncio.gather(*(env.client.get_workflow_handle(i).result() for i in ids))
        finally:
            api.terminate()
            api.wait(timeout=30)
            await env.shutdown()
            db.dispose()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{clients} concurrent clients x {starts} starts = {len(latencies)} orders started (all completed)")
    print(
        f"start-to-accepted latency: p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {percentile(latencies, 0.95):.1f} ms, max {max(latencies):.1f} ms; "
        f"{len(latencies) / elapsed:.0f} starts/s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--starts", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.clients, args.starts))
