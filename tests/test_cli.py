"""The `saga` console script, run as a user runs it, against the dev server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from activities.db import Database
from client.connection import TASK_QUEUE
from tests.orders import make_order
from worker import running_worker
from contracts.orders import order_workflow_id

SAGA = str(Path(sys.executable).parent / "saga")


class Run(NamedTuple):
    code: int
    stdout: str
    stderr: str


@pytest_asyncio.fixture
async def default_queue_worker(dev_client: Client, db: Database) -> AsyncIterator[Worker]:
    """A worker on the task queue the CLI starts workflows on."""
    async with running_worker(dev_client, db, task_queue=TASK_QUEUE, activity_threads=8) as worker:
        yield worker


@pytest.fixture
def saga(dev_address: str):
    async def run(*args: str) -> Run:
        process = await asyncio.create_subprocess_exec(
            SAGA, *args,
            env={**os.environ, "TEMPORAL_ADDRESS": dev_address, "COLUMNS": "200"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode is not None
        return Run(process.returncode, out.decode(), err.decode())

    return run


def _order_file(tmp_path: Path, **overrides) -> tuple[Path, str]:
    order = make_order(**overrides)
    path = tmp_path / f"{order.order_id}.json"
    path.write_text(order.model_dump_json())
    return path, order_workflow_id(order.order_id)


async def test_run_wait_json_prints_the_result(saga, default_queue_worker: Worker, tmp_path: Path) -> None:
    path, workflow_id = _order_file(tmp_path)
    run = await saga("run", "order", "--input", str(path), "--wait", "--json")
    assert run.code == 0, run.stderr
    output = json.loads(run.stdout)
    assert output["status"] == "COMPLETED" and output["workflow_id"] == workflow_id
    assert len(output["result"]["references"]) == 5
    assert output["ui"].startswith("http://localhost:8233/namespaces/default/workflows/" + workflow_id)

    again = await saga("run", "order", "--input", str(path))
    assert again.code == 1 and "already submitted" in again.stderr


async def test_failed_saga_exits_1_with_the_failure_chain(saga, default_queue_worker: Worker, tmp_path: Path) -> None:
    path, _ = _order_file(tmp_path, inject_failure={"step": "reserve_inventory", "mode": "permanent"})
    run = await saga("run", "order", "--input", str(path), "--wait", "--json")
    assert run.code == 1
    output = json.loads(run.stdout)
    assert output["status"] == "FAILED"
    saga_error = output["failure"][0]
    assert saga_error["type"] == "SagaCompensated"
    steps = [c["step"] for c in saga_error["details"][0]["compensations"]]
    assert steps == ["reserve_inventory", "send_notification", "charge_payment", "create_customer_account"]
    assert output["failure"][-1]["message"] == "injected permanent failure at reserve_inventory"


async def test_invalid_order_file_is_refused_naming_the_field(saga, tmp_path: Path) -> None:
    path, _ = _order_file(tmp_path)
    data = json.loads(path.read_text())
    data["items"][0]["quantity"] = -1
    path.write_text(json.dumps(data))
    run = await saga("run", "order", "--input", str(path))
    assert run.code == 2
    assert "items.0.quantity" in run.stderr and "greater than 0" in run.stderr


async def test_wait_shows_progress_and_status_result_list_history_replay(
    saga, default_queue_worker: Worker, tmp_path: Path
) -> None:
    path, workflow_id = _order_file(tmp_path)
    run = await saga("run", "order", "--input", str(path), "--wait")
    assert run.code == 0, run.stderr
    assert f"{workflow_id} COMPLETED" in run.stdout
    assert "5/5" in run.stderr  # the progress bar, drawn from the status query

    status = json.loads((await saga("status", workflow_id, "--json")).stdout)
    assert status["status"] == "COMPLETED" and status["progress"]["done"] == 5
    result = json.loads((await saga("result", workflow_id, "--json")).stdout)
    assert result["result"]["order_id"] == workflow_id.removeprefix("order-")
    listed = json.loads((await saga("list", "--json", "--limit", "100")).stdout)
    assert workflow_id in [row["workflow_id"] for row in listed]

    history_file = tmp_path / "history.json"
    assert (await saga("history", workflow_id, "--out", str(history_file))).code == 0
    replay_file = await saga("replay", "--file", str(history_file))
    assert replay_file.code == 0 and "1/1 histories replayed cleanly" in replay_file.stdout
    assert (await saga("replay", workflow_id)).code == 0
    assert (await saga("replay", "--dir", str(Path(__file__).parent / "histories"))).code == 0
    assert (await saga("replay")).code == 2


async def test_pause_resume_and_cancel(saga, default_queue_worker: Worker, tmp_path: Path) -> None:
    path, workflow_id = _order_file(tmp_path, step_delay_seconds=1)
    assert (await saga("run", "order", "--input", str(path))).code == 0
    assert (await saga("pause", workflow_id)).code == 0
    await asyncio.sleep(0.5)
    paused = json.loads((await saga("status", workflow_id, "--json")).stdout)
    assert paused["progress"]["state"] == "paused"
    assert (await saga("resume", workflow_id)).code == 0
    assert (await saga("cancel", workflow_id)).code == 0
    result = await saga("result", workflow_id, "--json")
    assert result.code == 1, result.stderr
    assert json.loads(result.stdout)["status"] == "CANCELED"


async def test_run_document_and_folder(saga, default_queue_worker: Worker) -> None:
    samples = Path(__file__).resolve().parents[1] / "samples" / "documents"
    run = await saga("run", "document", str(samples / "saga-pattern.md"), "--wait", "--json")
    assert run.code == 0, run.stderr
    result = json.loads(run.stdout)["result"]
    assert result["format"] == "md" and result["concept_count"] > 0 and result["top_concepts"]

    rejected = await saga("run", "document", str(samples / "bad-encrypted.pdf"), "--wait", "--json")
    assert rejected.code == 1
    failure = json.loads(rejected.stdout)["failure"][0]
    assert failure["type"] == "InvalidInput" and "encrypted PDF" in failure["message"]

    batch = await saga("run", "document", str(samples), "--wait", "--json")
    assert batch.code == 0, batch.stderr
    summary = json.loads(batch.stdout)["result"]
    assert (summary["completed"], summary["rejected"], summary["failed"]) == (5, 8, 0)
