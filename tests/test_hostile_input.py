"""Hostile input at every entry point: a clear error naming what is wrong, the worker keeps
running, and nothing already stored changes."""

from __future__ import annotations

import io
import json
import os
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pypdf
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.activities.orders import invariant_violations
from sagaworks.worker import running_worker
from tests.documents import document_row, start_document
from tests.orders import make_order, start_order

SAGA = str(Path(sys.executable).parent / "saga")


def _order() -> dict[str, Any]:
    return make_order().model_dump(mode="json")


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# (id, how to corrupt a valid order, text the error must contain)
ORDER_CASES: list[tuple[str, Any, str]] = [
    ("wrong-type", lambda o: o["items"][0].update(quantity="3"), "items.0.quantity"),
    ("missing-field", lambda o: o.pop("customer_email"), "customer_email"),
    ("extra-field", lambda o: o.update(discount=100), "discount"),
    ("out-of-range", lambda o: o["items"][0].update(unit_price_cents=10**12), "items.0.unit_price_cents"),
    ("negative", lambda o: o["items"][0].update(quantity=-1), "items.0.quantity"),
    ("too-many-items", lambda o: o.update(items=o["items"] * 30), "items"),
    ("over-2mb", lambda o: o.update(shipping_address="x" * (2 * 2**20 + 1)), "shipping_address"),
    ("deeply-nested", lambda o: o.update(items=_nested(800)), "recursion limit exceeded"),
    ("nul-byte", lambda o: o.update(shipping_address="1 Main St\x00DROP TABLE"), "shipping_address"),
    ("bad-email", lambda o: o.update(customer_email="not an email"), "customer_email"),
]


def _corrupted(corrupt: Any) -> dict[str, Any]:
    order = _order()
    corrupt(order)
    return order


@pytest.mark.parametrize(("corrupt", "field"), [c[1:] for c in ORDER_CASES], ids=[c[0] for c in ORDER_CASES])
def test_saga_cli_refuses_the_order_file_naming_the_field(tmp_path: Path, corrupt: Any, field: str) -> None:
    import subprocess

    path = tmp_path / "order.json"
    path.write_text(json.dumps(_corrupted(corrupt)))
    # No server is needed: the file is checked before anything is started.
    run = subprocess.run(
        [SAGA, "run", "order", "--input", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1"},
    )
    assert run.returncode == 2, run.stderr
    assert field in run.stderr and "invalid order" in run.stderr


def test_saga_cli_refuses_invalid_utf8(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "order.json"
    path.write_bytes(json.dumps(_order()).replace("London", "Lond\\u0000").encode().replace(b"Lond", b"Lond\xff\xfe"))
    run = subprocess.run([SAGA, "run", "order", "--input", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "invalid order" in run.stderr


@pytest.mark.parametrize(
    ("corrupt", "field"),
    [c[1:] for c in ORDER_CASES if c[0] != "over-2mb"],
    ids=[c[0] for c in ORDER_CASES if c[0] != "over-2mb"],
)
async def test_raw_json_to_the_workflow_fails_it_naming_the_field(
    dev_client: Client, task_queue: str, db: Database, corrupt: Any, field: str
) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        # Raw JSON bytes, as `temporal workflow start --input` sends them.
        raw = RawValue(Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(_corrupted(corrupt)).encode()))
        handle = await dev_client.start_workflow(
            "OrderFulfillmentSaga", raw, id=f"hostile-{uuid.uuid4()}", task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert field in str(failure.value.cause)
        # The worker keeps serving, and nothing stored changed.
        order = make_order()
        await (await start_order(dev_client, task_queue, order)).result()
    assert invariant_violations(db, {order.order_id: "COMPLETED"}) == []


async def test_invalid_utf8_payload_fails_the_workflow(dev_client: Client, task_queue: str, db: Database) -> None:
    data = json.dumps(_order()).encode().replace(b"London", b"Lond\xff\xfe")
    raw = RawValue(Payload(metadata={"encoding": b"json/plain"}, data=data))
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        handle = await dev_client.start_workflow(
            "OrderFulfillmentSaga", raw, id=f"hostile-{uuid.uuid4()}", task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert "invalid unicode code point" in str(failure.value.cause)


async def test_payload_over_the_server_limit_is_refused_at_start(dev_client: Client, task_queue: str) -> None:
    order = _corrupted(lambda o: o.update(shipping_address="x" * (3 * 2**20)))
    with pytest.raises(RPCError) as refused:
        await dev_client.start_workflow(
            "OrderFulfillmentSaga", order, id=f"hostile-{uuid.uuid4()}", task_queue=task_queue
        )
    assert "size" in str(refused.value).lower()


def _zip_bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<w:document/>")
        archive.writestr("word/padding.xml", b"\0" * (300 * 2**20))


def _huge_pdf(path: Path, pages: int) -> None:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(72, 72)
    buffer = io.BytesIO()
    writer.write(buffer)
    path.write_bytes(buffer.getvalue())


async def test_hostile_documents_are_rejected_and_the_worker_keeps_running(
    dev_client: Client, task_queue: str, db: Database, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _zip_bomb(docs / "bomb.docx")
    _huge_pdf(docs / "huge.pdf", pages=60)
    (docs / "fine.txt").write_text("A perfectly ordinary note about sagas and compensation.")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the roots")
    cases = [
        (docs / "bomb.docx", "zip bomb"),
        (docs / "huge.pdf", "PDF has 60 pages (limit 50)"),
        (Path(f"{docs}/../secret.txt"), "outside the allowed document roots"),
        # Relative to the worker's first document root, where there is no such file.
        (Path("relative/path.txt"), "relative/path.txt: file not found"),
    ]
    settings = DocumentSettings(roots=(docs,), max_pdf_pages=50)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
        for path, reason in cases:
            handle = (
                await start_document(dev_client, task_queue, path)
                if path.is_absolute()
                else (
                    await dev_client.start_workflow(
                        "DocumentPipeline", {"path": str(path)}, id=f"hostile-{uuid.uuid4()}", task_queue=task_queue
                    )
                )
            )
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
            cause = failure.value.cause
            assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput", cause
            assert reason in cause.message
        nul = await dev_client.start_workflow(
            "DocumentPipeline",
            {"path": f"{docs}/fine.txt\x00.pdf"},
            id=f"hostile-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await nul.result()
        assert "path" in str(failure.value.cause) and "control characters" in str(failure.value.cause)
        result = await (await start_document(dev_client, task_queue, docs / "fine.txt")).result()
    assert result.concept_count > 0
    assert document_row(db, docs / "bomb.docx").status == "REJECTED"
