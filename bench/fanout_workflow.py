"""The W2 workflow of bench/peers.py: N writes at once, then an aggregate write."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow


@workflow.defn
class FanOutBench:
    """Fan out ``n`` ``bench_write`` activities, then one aggregate write.

    Each write is short, idempotent (``INSERT OR IGNORE`` of its own key) and touches our
    database only, so by the README's rule it runs as a local activity: no server round
    trip per write, one marker each in the history.
    """

    @workflow.run
    async def run(self, args: list[Any]) -> int:
        db, n = args
        run_id = workflow.info().workflow_id
        timeout = timedelta(seconds=60)
        await asyncio.gather(
            *(
                workflow.execute_local_activity("bench_write", [db, run_id, f"f{i}"], start_to_close_timeout=timeout)
                for i in range(n)
            )
        )
        await workflow.execute_local_activity("bench_write", [db, run_id, "aggregate"], start_to_close_timeout=timeout)
        return n
