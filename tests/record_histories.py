"""Record the histories that tests/test_replay.py replays: python -m tests.record_histories

Runs a completed, a compensated and a cancelled order saga on a throwaway dev server and
writes their histories to tests/histories/. Re-record only for a deliberate, patched change
of a workflow; keep the old files too, since running workflows still have old histories.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from pathlib import Path

from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.db import Database
from client.connection import DATA_CONVERTER
from client.devserver import server_tuning_args, temporal_binary
from tests.orders import make_order, start_order, wait_for_status
from worker import running_worker

HISTORIES = Path(__file__).parent / "histories"


async def record(out_dir: Path) -> list[Path]:
    """Run each scenario once and save its history; return the files written."""
    scenarios = {
        "order_completed": make_order(),
        "order_compensated": make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"}),
        "order_cancelled": make_order(step_delay_seconds=1),
        "order_retried": make_order(inject_failure={"step": "charge_payment", "mode": "transient"}),
    }
    written = []
    task_queue = f"record-{uuid.uuid4()}"
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=DATA_CONVERTER,
        dev_server_extra_args=server_tuning_args(),
    ) as env:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{tmp}/app.db")
            async with running_worker(env.client, db, task_queue=task_queue, activity_threads=4):
                for name, order in scenarios.items():
                    handle = await start_order(env.client, task_queue, order)
                    if name == "order_cancelled":
                        await wait_for_status(handle, lambda s: s.done >= 2)
                        await handle.cancel()
                    with contextlib.suppress(WorkflowFailureError):
                        await handle.result()
                    path = out_dir / f"{name}.json"
                    path.write_text((await handle.fetch_history()).to_json())
                    written.append(path)
            db.dispose()
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES
    target.mkdir(parents=True, exist_ok=True)
    for file in asyncio.run(record(target)):
        print(file)
