"""The workflows bench/peers.py runs for the peers' own workloads, step for step."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

WRITE_TIMEOUT = timedelta(seconds=60)

# Each write is short, idempotent (``INSERT OR IGNORE`` of its own key) and touches our
# database only, so by the README's rule it runs as a local activity: no server round trip
# per write, one marker each in the history.


@workflow.defn
class StepsBench:
    """W1 as the peers run it: ``steps`` ``bench_write`` activities, one after another."""

    @workflow.run
    async def run(self, args: list[Any]) -> int:
        db, steps = args
        run_id = workflow.info().workflow_id
        for step in range(steps):
            await workflow.execute_local_activity(
                "bench_write", [db, run_id, f"s{step}"], start_to_close_timeout=WRITE_TIMEOUT
            )
        return steps


@workflow.defn
class FanOutBench:
    """W2: fan out ``n`` ``bench_write`` activities, then one aggregate write."""

    @workflow.run
    async def run(self, args: list[Any]) -> int:
        db, n = args
        run_id = workflow.info().workflow_id
        await asyncio.gather(
            *(
                workflow.execute_local_activity("bench_write", [db, run_id, f"f{i}"], start_to_close_timeout=WRITE_TIMEOUT)
                for i in range(n)
            )
        )
        await workflow.execute_local_activity("bench_write", [db, run_id, "aggregate"], start_to_close_timeout=WRITE_TIMEOUT)
        return n
