"""A worker started before Temporal (or while it restarts) waits for it instead of exiting."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagaworks.client.connection import connect
from sagaworks.client.devserver import dev_server_command, wait_until_serving
from tests.orders import make_order, start_order
from tests.ports import free_port
from tests.workers import WorkerProcess

RETRYING = "Temporal not reachable"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def worker_process(port: int, task_queue: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        f"127.0.0.1:{port}", task_queue, f"sqlite:///{tmp_path / 'app.db'}", tmp_path / "worker.log"
    )
    yield process
    process.stop()


async def _wait_for_log(worker: WorkerProcess, text: str, timeout: float = 60) -> None:
    async def poll() -> None:
        while not (worker.log_file.exists() and text in worker.log_file.read_text()):
            assert worker.process is not None and worker.process.poll() is None, worker.log_file.read_text()
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), timeout)


async def test_worker_started_before_the_server_waits_and_then_serves(
    port: int, task_queue: str, worker_process: WorkerProcess, tmp_path: Path
) -> None:
    worker_process.start()
    await _wait_for_log(worker_process, RETRYING)  # it is retrying, not dead

    server = subprocess.Popen(
        dev_server_command(db_file=tmp_path / "temporal.db", port=port, headless=True), stdin=subprocess.DEVNULL
    )
    try:
        address = f"127.0.0.1:{port}"
        await wait_until_serving(address, timeout=60)
        client = await connect(address=address)
        handle = await start_order(client, task_queue, make_order())
        result = await asyncio.wait_for(handle.result(), timeout=120)
        assert len(result.references) == 5
    finally:
        server.terminate()
        server.wait(timeout=30)


async def test_sigterm_while_waiting_for_the_server_exits_cleanly(worker_process: WorkerProcess) -> None:
    worker_process.start()
    await _wait_for_log(worker_process, RETRYING)
    assert worker_process.terminate(timeout=30) == 0
    assert "Stopped before Temporal was reachable" in worker_process.log_file.read_text()


async def test_the_worker_registers_the_search_attributes_an_approval_publishes(
    port: int, task_queue: str, worker_process: WorkerProcess, tmp_path: Path
) -> None:
    """A stock dev server (none of our flags) knows no SagaApproval: the worker registers it,
    so an approval's first upsert does not fail its workflow task."""
    from temporalio.client import WorkflowHandle

    from sagaworks.client.devserver import temporal_binary
    from sagaworks.contracts.routing import RoutingInput
    from tests.approval_probe import wait_for_approval_state

    server = subprocess.Popen(
        [
            temporal_binary(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--db-filename",
            str(tmp_path / "temporal.db"),
            "--log-level",
            "error",
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        address = f"127.0.0.1:{port}"
        await wait_until_serving(address, timeout=60)
        worker_process.start()
        client = await connect(address=address)
        request = RoutingInput(request_id=f"sa-{task_queue[-8:]}", requester="dana", text="admin access, please")
        handle: WorkflowHandle = await client.start_workflow(
            "RoutingWorkflow", request, id=f"routing-{request.request_id}", task_queue=task_queue
        )
        await wait_for_approval_state(handle, "pending", timeout=120)
        await handle.terminate()
    finally:
        server.terminate()
        server.wait(timeout=30)
