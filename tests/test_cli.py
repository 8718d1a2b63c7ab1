"""The `saga` console script, run as a user runs it, against the dev server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from sagaworks.activities.db import Database
from sagaworks.client.connection import TASK_QUEUE
from sagaworks.contracts.orders import order_workflow_id
from sagaworks.worker import running_worker
from tests.orders import make_order

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
    # As on a fresh machine or in CI: no terminal, no COLUMNS.
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"TEMPORAL_ADDRESS": dev_address}

    async def run(*args: str, stdin: bytes | None = None) -> Run:
        process = await asyncio.create_subprocess_exec(
            SAGA,
            *args,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=120)
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
    # Long timers between steps: the run is still going when the commands arrive, however
    # slow the machine.
    path, workflow_id = _order_file(tmp_path, step_delay_seconds=60)
    assert (await saga("run", "order", "--input", str(path))).code == 0
    assert (await saga("pause", workflow_id)).code == 0
    for _ in range(100):  # the signal is handled once a worker takes the workflow task
        paused = json.loads((await saga("status", workflow_id, "--json")).stdout)
        if isinstance(paused["progress"], dict) and paused["progress"]["state"] == "paused":
            break
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


async def test_list_prints_whole_ids_when_piped(saga, default_queue_worker: Worker, tmp_path: Path) -> None:
    long_id = "a-very-long-order-id-" + "x" * 40
    path, workflow_id = _order_file(tmp_path, order_id=long_id)
    assert (await saga("run", "order", "--input", str(path), "--wait")).code == 0
    listed = await saga("list", "--family", "order", "--limit", "100")
    assert listed.code == 0
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    row = next(r for r in rows if r[0] == workflow_id)  # the whole id, as one cell
    assert row[1:3] == ["order", "COMPLETED"]
    # Short UTC times: date and time to the second.
    assert len(row[3]) == 10 and len(row[4]) == 8


async def test_cancel_of_a_closed_run_says_so_and_exits_1(saga, default_queue_worker: Worker, tmp_path: Path) -> None:
    path, workflow_id = _order_file(tmp_path)
    assert (await saga("run", "order", "--input", str(path), "--wait")).code == 0
    cancel = await saga("cancel", workflow_id)
    assert cancel.code == 1
    assert f"{workflow_id} has already closed (COMPLETED)" in cancel.stderr
    assert (await saga("pause", workflow_id)).code == 1


async def test_run_document_checks_the_path_before_starting(saga, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.txt"
    run = await saga("run", "document", str(missing))
    assert run.code == 2 and f"{missing}: no such file or folder" in run.stderr
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    run = await saga("run", "document", str(fifo))
    assert run.code == 2 and "neither a file nor a folder" in run.stderr
    batch_of_a_file = await saga("run", "document-batch", str(Path(__file__)))
    assert (
        batch_of_a_file.code == 2 and "not a folder; `saga run document-batch` takes a folder" in batch_of_a_file.stderr
    )
    listed = json.loads((await saga("list", "--json", "--limit", "1000")).stdout)
    assert not any(str(missing) in json.dumps(row) for row in listed)


async def test_run_any_family_from_stdin_with_overrides(saga, default_queue_worker: Worker) -> None:
    order = json.loads(make_order().model_dump_json())
    order_id = order["order_id"] + "-set"
    run = await saga(
        "run",
        "order",
        "--input",
        "-",
        "--set",
        f"order_id={order_id}",
        "--set",
        "items.0.quantity=3",
        "--wait",
        "--json",
        stdin=json.dumps(order).encode(),
    )
    assert run.code == 0, run.stderr
    result = json.loads(run.stdout)["result"]
    assert result["order_id"] == order_id
    assert result["amount_cents"] == 3 * order["items"][0]["unit_price_cents"] + order["items"][1]["unit_price_cents"]
    bad = await saga("run", "order", "--input", "-", "--set", "items.0.quantity=zero", stdin=json.dumps(order).encode())
    assert bad.code == 2 and "items.0.quantity" in bad.stderr


async def test_catalog_json_lists_every_family_with_its_schema(saga) -> None:
    from sagaworks import registry

    run = await saga("catalog", "--json")
    assert run.code == 0
    catalog = json.loads(run.stdout)
    assert [entry["name"] for entry in catalog] == [f.name for f in registry().families]
    for entry, fam in zip(catalog, registry().families, strict=True):
        assert entry["input_schema"] == fam.input_model.model_json_schema()
        assert entry["workflow_type"] == fam.workflow.__name__


async def test_help_shows_no_type_placeholders(saga) -> None:
    for command in (("run", "order"), ("run", "document"), ("list",), ("dev", "up"), ("cancel",)):
        run = await saga(*command, "--help")
        assert run.code == 0
        assert "<bool>" not in run.stdout and "<str>" not in run.stdout.split("Options:")[1], run.stdout


async def test_codec_server_without_keys_refuses_to_start(saga) -> None:
    run = await saga("codec-server", "--port", "1")
    assert run.code == 2 and "SAGAWORKS_ENCRYPTION_KEYS" in run.stderr


async def test_inventory_lists_the_skus_an_order_may_use(saga) -> None:
    from sagaworks.contracts.orders import SAMPLE_INVENTORY

    listed = json.loads((await saga("inventory", "--json")).stdout)
    assert [row["sku"] for row in listed] == [entry.sku for entry in SAMPLE_INVENTORY]
    table = (await saga("inventory")).stdout.splitlines()
    assert [line.split()[0] for line in table[1:]] == [entry.sku for entry in SAMPLE_INVENTORY]


async def test_unusable_encryption_keys_are_one_clear_line(saga, tmp_path: Path) -> None:
    bad = {"SAGAWORKS_ENCRYPTION_KEYS": "not-a-key-entry"}
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | bad
    for args, code in ((("catalog",), 0), (("--help",), 0), (("list",), 2)):
        process = await asyncio.create_subprocess_exec(
            SAGA, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == code, (args, err.decode())
        assert b"Traceback" not in err
    assert err.decode().startswith("encryption settings: ")
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sagaworks.worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, worker_err = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert worker.returncode == 2 and b"Unusable encryption settings" in worker_err and b"Traceback" not in worker_err


async def test_breakers_lists_what_workers_share(tmp_path: Path) -> None:
    from sagaworks._breakers import BreakerConfig, Breakers

    url = f"sqlite:///{tmp_path / 'app.db'}"
    db = Database(url)
    try:
        shared = Breakers(db, {"viz": BreakerConfig(1, 60), "nlp": BreakerConfig(5, 60)})
        with pytest.raises(ZeroDivisionError):
            shared.call("viz", lambda: 1 / 0, fallback=False)
    finally:
        db.dispose()
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"DATABASE_URL": url}
    process = await asyncio.create_subprocess_exec(SAGA, "breakers", "--json", env=env, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    states = {row["name"]: row["state"] for row in json.loads(out)}
    assert process.returncode == 0 and states["viz"] == "open" and states["nlp"] == "closed"


async def test_run_wait_says_when_no_worker_polls_and_keeps_waiting(
    dev_address: str, dev_client: Client, db: Database, tmp_path: Path
) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"  # no poller of another test counts
    path, workflow_id = _order_file(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {
        "TEMPORAL_ADDRESS": dev_address,
        "SAGAWORKS_TASK_QUEUE": queue,
    }
    process = await asyncio.create_subprocess_exec(
        SAGA,
        "run",
        "order",
        "--input",
        str(path),
        "--wait",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    said = b""
    try:
        while f"No worker polls task queue {queue}".encode() not in said:
            chunk = await asyncio.wait_for(process.stderr.read(4096), timeout=60)
            assert chunk, f"the CLI ended without saying that no worker polls: {said.decode()}"
            said += chunk
        assert b"python -m sagaworks.worker --task-queue " + queue.encode() in said and b"saga dev up" in said
        assert process.returncode is None  # it keeps waiting
        async with running_worker(dev_client, db, task_queue=queue, activity_threads=4):
            stdout, more = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, (said + more).decode()
    assert f"{workflow_id} COMPLETED".encode() in stdout
