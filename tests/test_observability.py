"""Tracing and metrics of the worker process, switched on by environment variables."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.orders import make_order, start_order
from tests.ports import free_port
from tests.workers import WorkerProcess


async def test_worker_exports_spans_and_prometheus_metrics_when_asked(
    dev_client: Client, dev_address: str, task_queue: str, tmp_path: Path
) -> None:
    port = free_port()
    worker = WorkerProcess(
        dev_address,
        task_queue,
        f"sqlite:///{tmp_path / 'app.db'}",
        tmp_path / "worker.log",
        OTEL_TRACES_EXPORTER="console",
        SAGAWORKS_METRICS_PORT=str(port),
    )
    worker.start()
    try:
        handle = await start_order(dev_client, task_queue, make_order())
        await asyncio.wait_for(handle.result(), timeout=60)
        metrics = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )
        assert 'activity_type="charge_payment"' in metrics
        assert "temporal_activity_execution_latency" in metrics
        assert worker.terminate() == 0  # a clean exit flushes the span processor
    finally:
        worker.stop()
    output = worker.log_file.read_text()
    assert '"name": "RunActivity:charge_payment"' in output
    assert '"name": "RunWorkflow:OrderFulfillmentSaga"' in output


def test_tracing_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from sagaworks.client.observability import tracing_plugins

    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert tracing_plugins() == []
