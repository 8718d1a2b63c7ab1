"""Record the histories that tests/test_replay.py replays: python -m tests.record_histories

Runs order sagas (completed, compensated, cancelled, retried) and document pipelines
(completed, rejected, compensated) on a throwaway dev server and writes their histories to
tests/histories/. Re-record only for a deliberate, patched change
of a workflow; keep the old files too, since running workflows still have old histories.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from pathlib import Path

from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle

from activities.db import Database
from activities.documents import DocumentSettings
from client.devserver import start_embedded
from contracts.documents import DocumentInput
from tests.documents import SAMPLES, PoisonAwareProvider, start_document
from tests.orders import make_order, start_order, wait_for_status
from worker import running_worker
from workflows.document import DocumentPipeline

HISTORIES = Path(__file__).parent / "histories"


async def record(out_dir: Path) -> list[Path]:
    """Run each scenario once and save its history; return the files written."""
    orders = {
        "order_completed": make_order(),
        "order_compensated": make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"}),
        "order_cancelled": make_order(step_delay_seconds=1),
        "order_retried": make_order(inject_failure={"step": "charge_payment", "mode": "transient"}),
    }
    written: list[Path] = []
    task_queue = f"record-{uuid.uuid4()}"
    async with await start_embedded() as env:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            db = Database(f"sqlite:///{folder}/app.db")
            poisoned = folder / "poisoned.txt"
            poisoned.write_text("A document with POISON in it, which the model refuses.")
            # Runs since workflows/document.py FINALISE_PATCH; the document_{completed,
            # rejected,compensated}.json recorded before it stay beside them.
            documents = {
                "document_finalised_completed": SAMPLES / "durable-execution.txt",
                "document_finalised_rejected": SAMPLES / "bad-encrypted.pdf",
                "document_finalised_failed": poisoned,
                "document_finalised_relative_path": Path("saga-pattern.md"),
            }
            settings = DocumentSettings(roots=(SAMPLES, folder))  # relative paths: under SAMPLES
            async with running_worker(
                env.client, db, task_queue=task_queue, activity_threads=4, llm=PoisonAwareProvider(), documents=settings
            ):
                for name, order in orders.items():
                    handle = await start_order(env.client, task_queue, order)
                    if name == "order_cancelled":
                        await wait_for_status(handle, lambda s: s.done >= 2)
                        await handle.cancel()
                    written.append(await _save(handle, out_dir / f"{name}.json"))
                for name, path in documents.items():
                    handle = await start_document(env.client, task_queue, path) if path.is_absolute() else (
                        await env.client.start_workflow(
                            DocumentPipeline.run, DocumentInput(path=str(path)), id=f"document-relative-{path.stem}",
                            task_queue=task_queue,
                        )
                    )
                    written.append(await _save(handle, out_dir / f"{name}.json"))
            db.dispose()
    return written


async def _save(handle: WorkflowHandle[Any, Any], path: Path) -> Path:
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    path.write_text((await handle.fetch_history()).to_json())
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES
    target.mkdir(parents=True, exist_ok=True)
    for file in asyncio.run(record(target)):
        print(file)
