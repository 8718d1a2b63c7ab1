"""Whether workers poll a task queue, as the server sees it (``DescribeTaskQueue``).

The server lists every poller it saw in the last few minutes, a worker killed a moment ago
included, so a poller counts only if it polled within :data:`POLLER_FRESH_SECONDS` (a live
worker's long poll returns within a minute and polls again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

POLLER_FRESH_SECONDS = 70
"""A poller last seen longer ago than this is a worker that stopped."""

START_A_WORKER = (
    "start one with `python -m sagaworks.worker --task-queue {queue}` (or `saga dev up`, which starts a worker too)"
)


def fresh_pollers(pollers: Iterable[PollerInfo], now: float) -> int:
    """How many of ``pollers`` polled within :data:`POLLER_FRESH_SECONDS`."""
    return sum(1 for poller in pollers if now - poller.last_access_time.ToSeconds() <= POLLER_FRESH_SECONDS)


async def workflow_pollers(client: Client, task_queue: str, timeout: timedelta | None = None) -> int:
    """How many workers polled ``task_queue`` for workflow tasks within :data:`POLLER_FRESH_SECONDS`."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ),
        timeout=timeout,
    )
    return fresh_pollers(described.pollers, time.time())


def pollers_detail(pollers: int, task_queue: str) -> str:
    """What a poller count means, said where it is shown (``/api/health``)."""
    return (
        f"{pollers} worker(s) polling task queue {task_queue}: pollers the server saw within the last "
        f"{POLLER_FRESH_SECONDS} s, so a worker that stopped less than that ago still counts"
    )


async def say_while_no_worker(
    client: Client, task_queue: str, say: Callable[[str], None], *, first_check: float = 3.0, every: float = 5.0
) -> None:
    """Say when no worker polls ``task_queue`` (first after ``first_check`` seconds, then
    every ``every``), and again once one does; runs until cancelled (the caller keeps waiting)."""
    await asyncio.sleep(first_check)
    silent = False
    while True:
        pollers: int | None
        try:
            pollers = await workflow_pollers(client, task_queue, timeout=timedelta(seconds=5))
        except RPCError:
            pollers = None  # not known this round (the server unreachable for a moment)
        if pollers == 0 and not silent:
            say(
                f"No worker polls task queue {task_queue}: the run waits "
                f"until one does; {START_A_WORKER.format(queue=task_queue)}."
            )
            silent = True
        elif pollers and silent:
            say(f"A worker polls task queue {task_queue} now.")
            silent = False
        await asyncio.sleep(every)
