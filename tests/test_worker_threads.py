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
        # running_worker sets all three: neither count is None, the executor a ThreadPoolExecutor.
        accepted = config["max_concurrent_activities"] + config["max_concurrent_local_activities"]  # type: ignore[operator]
        assert accepted <= config["activity_executor"]._max_workers  # type: ignore[union-attr]
