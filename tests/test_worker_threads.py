"""The worker accepts no more activities, remote and local, than it has threads to run them."""

from __future__ import annotations

from temporalio.client import Client

from sagaworks.activities.db import Database
from sagaworks.worker import running_worker


async def test_the_pool_has_a_thread_for_every_activity_the_worker_accepts(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=3) as worker:
        config = worker.config()
        accepted = config["max_concurrent_activities"] + config["max_concurrent_local_activities"]
        assert accepted <= config["activity_executor"]._max_workers  # type: ignore[attr-defined]
