"""The worker as a real process: SIGKILL mid-saga, clean SIGTERM, structured logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError

from sagaworks.activities.db import Database
from sagaworks.activities.orders import invariant_violations
from tests.orders import final_status, make_order, start_order, wait_for_status
from tests.workers import WorkerProcess


@pytest.fixture
def worker_process(dev_address: str, task_queue: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(dev_address, task_queue, f"sqlite:///{tmp_path / 'app.db'}", tmp_path / "worker.log")
    yield process
    process.stop()


@pytest.mark.parametrize("local_steps", [None, False], ids=["local-steps-default", "remote-steps"])
async def test_worker_killed_mid_saga_and_restarted_finishes_every_saga(
    dev_client: Client, task_queue: str, worker_process: WorkerProcess, tmp_path: Path, local_steps: bool | None
) -> None:
    worker_process.start()
    orders = [
        make_order(step_delay_seconds=0.4, local_steps=local_steps),
        make_order(
            step_delay_seconds=0.4,
            local_steps=local_steps,
            inject_failure={"step": "reserve_inventory", "mode": "permanent"},
        ),
        make_order(
            step_delay_seconds=0.4,
            local_steps=local_steps,
            inject_failure={"step": "send_notification", "mode": "transient"},
        ),
    ]
    handles = [await start_order(dev_client, task_queue, order) for order in orders]
    await wait_for_status(handles[0], lambda s: s.done >= 2)

    worker_process.kill()  # no drain, no goodbye: as if the machine died
    await asyncio.sleep(1.0)
    worker_process.start()

    outcomes = {}
    for order, handle in zip(orders, handles, strict=True):
        with contextlib.suppress(WorkflowFailureError):  # the injected permanent failure
            await asyncio.wait_for(handle.result(), timeout=120)
        outcomes[order.order_id] = await final_status(handle)
    assert list(outcomes.values()) == ["COMPLETED", "FAILED", "COMPLETED"]
    db = Database(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        assert invariant_violations(db, outcomes) == []
    finally:
        db.dispose()


async def test_sigterm_drains_and_exits_cleanly_with_structured_logs(
    dev_client: Client, task_queue: str, worker_process: WorkerProcess
) -> None:
    worker_process.start()
    handle = await start_order(dev_client, task_queue, make_order())
    await asyncio.wait_for(handle.result(), timeout=60)

    assert worker_process.terminate() == 0
    records = [json.loads(line) for line in worker_process.log_file.read_text().splitlines() if line.startswith("{")]
    events = [r["event"] for r in records]
    assert "Worker stopped" in events
    applied = [r for r in records if r["event"] == "Step applied"]
    assert len(applied) == 5
    assert {"workflow_id", "run_id", "activity", "attempt", "key"} <= applied[0].keys()
    assert applied[0]["workflow_id"] == handle.id
