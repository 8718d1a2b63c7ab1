"""A workflow on the step runner for its tests: numbered steps, each with an undo, that
fail or wait on demand, run in this test process."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from sagaworks import ActivityOptions, StepWorkflow


class StepsProbeInput(BaseModel):
    steps: int
    fail_at: int | None = None
    hold_at: int | None = None
    """The step whose activity waits until the test releases it."""
    again_at: int | None = None
    """The step run a second time, under the same name, right after its first run."""
    prepared_at: int | None = None
    """The step the workflow holds for a pause before itself, then prepares with an activity
    (``n + 100``, held by :attr:`hold_at` of that number), then runs ``held``."""


class ProbeStep(BaseModel):
    n: int
    fail: bool = False
    hold: bool = False


class StepsProbeActivities:
    """Records what ran, in order; a held step waits for :attr:`release`."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    @activity.defn
    async def probe_do(self, step: ProbeStep) -> int:
        self.log.append(f"do:{step.n}")
        if step.hold:
            self.holding.set()
            await self.release.wait()
        if step.fail:
            raise ApplicationError(f"step {step.n} failed", non_retryable=True)
        return step.n * 10

    @activity.defn
    async def probe_undo(self, step: ProbeStep) -> None:
        self.log.append(f"undo:{step.n}")


FAST = ActivityOptions(start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(maximum_attempts=1))


@workflow.defn
class StepsProbeWorkflow(StepWorkflow):
    @workflow.run
    async def run(self, probe: StepsProbeInput) -> list[int]:
        names = [f"step{n}" for n in range(1, probe.steps + 1)]
        results: list[int] = []
        async with self.steps.plan(names, options=FAST, compensation_options=FAST) as steps:
            for n, name in enumerate(names, 1):
                arg = ProbeStep(n=n, fail=n == probe.fail_at, hold=n == probe.hold_at)
                if n == probe.prepared_at:
                    await steps.unpaused()
                    await workflow.execute_activity_method(
                        StepsProbeActivities.probe_do, ProbeStep(n=n + 100, hold=n + 100 == probe.hold_at), **FAST
                    )
                results.append(
                    await steps.run(
                        name,
                        StepsProbeActivities.probe_do,
                        arg,
                        undo=StepsProbeActivities.probe_undo,
                        describe=lambda r: f"got {r}",
                        held=n == probe.prepared_at,
                    )
                )
                if n == probe.again_at:
                    # The second run's result replaces the first's (as a mitigation's does).
                    again: int = await steps.run(name, StepsProbeActivities.probe_do, ProbeStep(n=n))
                    results[-1] = again
        return results
