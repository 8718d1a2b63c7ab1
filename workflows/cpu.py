"""Where CPU-bound activities run: a worker of their own, on a task queue of their own.

The main worker runs activities in threads, which share one GIL with each other and with
the worker's event loop; a YAKE extraction or a TextRank summary holds it for their whole
run. worker.py therefore serves the pure CPU-bound activities (each family's ``cpu_activities``)
a second time, from a process pool, on ``<task queue>-cpu``, and workflows send them there.
"""

from __future__ import annotations

from temporalio import workflow

CPU_QUEUE_SUFFIX = "-cpu"


def cpu_queue(task_queue: str) -> str:
    """The CPU-bound activities' task queue beside ``task_queue``."""
    return f"{task_queue}{CPU_QUEUE_SUFFIX}"


def current_cpu_queue() -> str:
    """Workflow code: the CPU queue beside the task queue this workflow runs on."""
    return cpu_queue(workflow.info().task_queue)
