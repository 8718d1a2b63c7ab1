"""`saga approve|reject`, `saga schedule ...` and `saga stats`, run as a user runs them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.client.connection import TASK_QUEUE
from sagaworks.contracts.orders import order_workflow_id
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES
from tests.approval_probe import wait_for_approval_state
from tests.test_cli import saga  # noqa: F401 (the fixture)


@pytest_asyncio.fixture
async def patterns_worker(dev_client: Client, db: Database) -> AsyncIterator[Worker]:
    """A worker on the CLI's task queue that may read the sample feeds."""
    settings = DocumentSettings(roots=(SAMPLES.parent,))
    async with running_worker(dev_client, db, task_queue=TASK_QUEUE, activity_threads=8, settings=[settings]) as worker:
        yield worker


async def test_approve_and_reject_from_the_command_line(saga, patterns_worker: Worker, dev_client: Client) -> None:
    request_id = f"cli-{uuid.uuid4().hex[:8]}"
    started = await saga(
        "run", "routing", "--input", str(SAMPLES / "routing/admin-request.json"), "--set", f"request_id={request_id}"
    )
    assert started.code == 0, started.stderr
    workflow_id = f"routing-{request_id}"
    handle = dev_client.get_workflow_handle(workflow_id)
    await wait_for_approval_state(handle, "pending")

    outsider = await saga("approve", workflow_id, "--approver", "mallory")
    assert outsider.code == 1 and "mallory is not one of alice, bob" in outsider.stderr
    no_reason = await saga("reject", workflow_id, "--approver", "alice")
    assert no_reason.code == 2 and "--reason" in no_reason.stderr
    approved = await saga("approve", workflow_id, "--approver", "alice")
    assert approved.code == 0 and f"{request_id}: approved by alice" in approved.stdout
    late = await saga("reject", workflow_id, "--approver", "bob", "--reason", "changed my mind")
    assert late.code == 1

    result = await saga("result", workflow_id, "--json")
    assert json.loads(result.stdout)["result"]["decided_by"] == "alice"
    # A family that declares no approval is told so, naming those that do.
    order = await saga("run", "order", "--input", str(SAMPLES / "orders/order.json"), "--set", f"order_id={request_id}")
    assert order.code == 0, order.stderr
    not_one = await saga("approve", order_workflow_id(request_id), "--approver", "alice")
    assert not_one.code == 1 and "waits for no approval (families with one: routing)" in not_one.stderr, not_one.stderr


async def test_schedule_commands_drive_a_news_digest_schedule(saga, patterns_worker: Worker, tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    data = json.loads((SAMPLES / "news-digest/weekly.json").read_text()) | {"name": name}
    path = tmp_path / "digest.json"
    path.write_text(json.dumps(data))
    schedule_id = f"schedule-{name}"

    created = await saga(
        "schedule", "create", "news-digest", "--cron", "0 7 * * MON", "--input", str(path), "--id", schedule_id
    )
    assert created.code == 0, created.stderr
    again = await saga(
        "schedule", "create", "news-digest", "--cron", "0 7 * * MON", "--input", str(path), "--id", schedule_id
    )
    assert again.code == 1 and "exists already" in again.stderr
    assert schedule_id in (await saga("schedule", "list")).stdout
    assert (await saga("schedule", "pause", schedule_id)).code == 0
    described = json.loads((await saga("schedule", "describe", schedule_id, "--json")).stdout)
    assert (described["paused"], described["cron"], described["overlap"]) == (True, ["0 7 * * 1"], "SKIP")
    assert (await saga("schedule", "unpause", schedule_id)).code == 0
    assert (await saga("schedule", "trigger", schedule_id)).code == 0

    async def first_run() -> dict:
        while True:
            info = json.loads((await saga("schedule", "describe", schedule_id, "--json")).stdout)
            if info["recent"] and not info["running"]:
                return info
            await asyncio.sleep(0.3)

    info = await asyncio.wait_for(first_run(), 90)
    assert info["paused"] is False and info["actions"] == 1
    result = json.loads((await saga("result", info["recent"][0]["workflow_id"], "--json")).stdout)
    assert result["status"] == "COMPLETED" and len(result["result"]["articles"]) == 9
    assert (await saga("schedule", "delete", schedule_id)).code == 0
    assert schedule_id not in (await saga("schedule", "list")).stdout

    stats = json.loads((await saga("stats", "--family", "news-digest", "--json")).stdout)
    assert stats["family"] == "news-digest" and stats["workflows"] >= 1
    assert {"fetch_feed", "store_digest"} <= {row["activity_type"] for row in stats["activities"]}
