"""Record the query family's histories for tests/test_replay.py:

    python -m tests.record_query_histories [folder]

A completed run (chart), a degraded run (the viz agent down: table fallback) and a
cancelled run (paused between agents, then cancelled), on a throwaway dev server. Like
tests/record_histories.py: re-record only for a deliberate, patched change, and keep the
old files.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

from sagaworks.activities.db import Database
from sagaworks.activities.query.activities import QuerySettings
from sagaworks.client.devserver import start_embedded
from sagaworks.worker import running_worker
from tests.queries import dead_url, start_query, wait_for_status
from tests.record_histories import _save, new_history_path, record_into


async def record(out_dir: Path) -> list[Path]:
    """Run each scenario once and save its history; return the files written."""
    written: list[Path] = []
    async with await start_embedded() as env:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{tmp}/app.db")
            task_queue = f"record-{uuid.uuid4()}"
            async with running_worker(
                env.client, db, task_queue=task_queue, activity_threads=4, settings=[QuerySettings()]
            ):
                handle = await start_query(env.client, task_queue, "average temperature by month in 2014")
                written.append(await _save(handle, new_history_path(out_dir, "query_completed")))
                handle = await start_query(
                    env.client, task_queue, "average price by symbol", pause_between_agents_seconds=0.2
                )
                await handle.signal("pause")
                await wait_for_status(handle, lambda s: s.state == "paused" and "health" in s.completed_steps)
                await handle.cancel()
                written.append(await _save(handle, new_history_path(out_dir, "query_cancelled")))
            task_queue = f"record-{uuid.uuid4()}"
            degraded = QuerySettings(agent_urls={"viz": dead_url()})
            async with running_worker(env.client, db, task_queue=task_queue, activity_threads=4, settings=[degraded]):
                handle = await start_query(env.client, task_queue, "average mpg by origin")
                written.append(await _save(handle, new_history_path(out_dir, "query_degraded")))
            db.dispose()
    return written


if __name__ == "__main__":
    record_into(lambda target, _only: record(target), sys.argv[1:])
