"""The workflows bench/peers.py runs for the peers' own workloads, step for step."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from temporalio import workflow


def _write(db: str, step: str) -> Awaitable[Any]:
    """One ``bench_write`` of this run's row ``step``.

    Each write is short, idempotent (``INSERT OR IGNORE`` of its own key) and touches our
    database only, which is when a step may be a local activity: no server round
    trip per write, one marker each in the history.
    """
    return workflow.execute_local_activity(
        "bench_write", [db, workflow.info().workflow_id, step], start_to_close_timeout=timedelta(seconds=60)
    )


@workflow.defn
class StepsBench:
    """W1 as the peers run it: ``steps`` writes, one after another."""

    @workflow.run
    async def run(self, args: list[Any]) -> int:
        db, steps = args
        for step in range(steps):
            await _write(db, f"s{step}")
        return steps


@workflow.defn
class FanOutBench:
    """W2: ``n`` writes at once, then one aggregate write."""

    @workflow.run
    async def run(self, args: list[Any]) -> int:
        db, n = args
        await asyncio.gather(*(_write(db, f"f{i}") for i in range(n)))
        await _write(db, "aggregate")
        return n
