"""A small saga for testing the Saga helper: N numbered steps, compensations registered
after each step (so a failure at step k undoes k-1..1), with failures on demand."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from sagaworks import Saga


class ProbeInput(BaseModel):
    steps: int
    fail_at: int | None = None
    block_at: int | None = None
    flaky_undo_at: int | None = None
    broken_undo_at: int | None = None
    parallel: bool = False


class StepArg(BaseModel):
    n: int
    fail: bool = False
    block: bool = False
    flaky_undo: bool = False
    broken_undo: bool = False


class ProbeActivities:
    """Records what ran, in order, in this test process."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.attempts: Counter[str] = Counter()
        self.blocked = asyncio.Event()
        self.barrier: asyncio.Barrier | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    @activity.defn
    async def probe_step(self, arg: StepArg) -> int:
        self.log.append(f"do:{arg.n}")
        if arg.fail:
            raise ApplicationError(f"step {arg.n} failed", non_retryable=True)
        if arg.block:
            self.blocked.set()
            while True:  # until the workflow's cancellation reaches us via heartbeat
                activity.heartbeat()
                await asyncio.sleep(0.05)
        return arg.n

    @activity.defn
    async def probe_undo(self, arg: StepArg) -> None:
        self.attempts[f"undo:{arg.n}"] += 1
        if arg.broken_undo:
            raise ApplicationError(f"undo {arg.n} is broken", non_retryable=True)
        if arg.flaky_undo and self.attempts[f"undo:{arg.n}"] == 1:
            raise ApplicationError(f"undo {arg.n} flaked")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.barrier is not None:
                await asyncio.wait_for(self.barrier.wait(), timeout=10)
            else:
                await asyncio.sleep(0.05)  # long enough for an overlapping undo to show
        finally:
            self.in_flight -= 1
        self.log.append(f"undo:{arg.n}")


FAST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)


@workflow.defn
class SagaProbeWorkflow:
    def __init__(self) -> None:
        self._saga = Saga()

    @workflow.query
    def state(self) -> str:
        """The saga's own state: nothing in this workflow sets it."""
        return self._saga.state

    @workflow.run
    async def run(self, probe: ProbeInput) -> list[int]:
        done: list[int] = []
        self._saga = Saga(
            parallel=probe.parallel,
            options={"start_to_close_timeout": timedelta(seconds=30), "retry_policy": FAST_RETRY},
        )
        async with self._saga as saga:
            for n in range(1, probe.steps + 1):
                arg = StepArg(
                    n=n,
                    fail=n == probe.fail_at,
                    block=n == probe.block_at,
                    flaky_undo=n == probe.flaky_undo_at,
                    broken_undo=n == probe.broken_undo_at,
                )
                done.append(
                    await workflow.execute_activity_method(
                        ProbeActivities.probe_step,
                        arg,
                        start_to_close_timeout=timedelta(seconds=60),
                        heartbeat_timeout=timedelta(seconds=2),
                        retry_policy=RetryPolicy(maximum_attempts=1),
                    )
                )
                saga.add_compensation(ProbeActivities.probe_undo, arg, step=f"step{n}")
        return done
