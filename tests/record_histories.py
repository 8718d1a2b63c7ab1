"""Record the histories that tests/test_replay.py replays: python -m tests.record_histories

Runs order sagas (completed, compensated, cancelled, retried) and document pipelines
(completed, rejected, compensated) on a throwaway dev server and writes their histories to
tests/histories/. A scenario already recorded gets a new file beside the old one
(``NAME-YYYYMMDD.json``): old files are never overwritten or deleted, since running
workflows still have old histories and the code must keep replaying them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path

from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle

from activities.db import Database
from activities.documents import DocumentSettings
from client.devserver import start_embedded
from tests.mcp_scenarios import MCP_SCENARIOS
from tests.documents import SAMPLES, PoisonAwareProvider, start_document
from tests.orders import make_order, start_order, wait_for_status
from worker import running_worker

HISTORIES = Path(__file__).parent / "histories"


async def record(out_dir: Path, only: str = "") -> list[Path]:
    """Run each scenario (whose name starts with ``only``) once and save its history;
    return the files written."""
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
            documents = {
                "document_completed": SAMPLES / "durable-execution.txt",
                "document_rejected": SAMPLES / "bad-encrypted.pdf",
                "document_compensated": poisoned,
            }
            settings = DocumentSettings(roots=(SAMPLES, folder))
            async with running_worker(
                env.client, db, task_queue=task_queue, activity_threads=4, llm=PoisonAwareProvider(), documents=settings
            ):
                for name, order in orders.items():
                    if not name.startswith(only):
                        continue
                    handle = await start_order(env.client, task_queue, order)
                    if name == "order_cancelled":
                        await wait_for_status(handle, lambda s: s.done >= 2)
                        await handle.cancel()
                    written.append(await _save(handle, new_history_path(out_dir, name)))
                for name, path in documents.items():
                    if not name.startswith(only):
                        continue
                    handle = await start_document(env.client, task_queue, path)
                    written.append(await _save(handle, new_history_path(out_dir, name)))
                for name, scenario in MCP_SCENARIOS.items():
                    if name.startswith(only):
                        written.append(await _save(await scenario(env.client, task_queue), new_history_path(out_dir, name)))
            db.dispose()
    return written


def new_history_path(out_dir: Path, name: str, today: date | None = None) -> Path:
    """A file for scenario ``name`` that does not exist yet."""
    candidate = out_dir / f"{name}.json"
    stamp = (today or date.today()).strftime("%Y%m%d")
    counter = 1
    while candidate.exists():
        suffix = stamp if counter == 1 else f"{stamp}-{counter}"
        candidate = out_dir / f"{name}-{suffix}.json"
        counter += 1
    return candidate


async def _save(handle: WorkflowHandle[Any, Any], path: Path) -> Path:
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    path.write_text((await handle.fetch_history()).to_json())
    return path


if __name__ == "__main__":
    # python -m tests.record_histories [DIR] [--only NAME_PREFIX]
    args = sys.argv[1:]
    only = ""
    if "--only" in args:
        at = args.index("--only")
        only = args[at + 1]
        del args[at : at + 2]
    target = Path(args[0]) if args else HISTORIES
    target.mkdir(parents=True, exist_ok=True)
    for file in asyncio.run(record(target, only)):
        print(file)
