"""A tiny workflow whose step goes through a breaker of its own name and falls back when
that breaker is open (``sagaworks.guarded``)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from sagaworks import Breakers, Guarded, guarded
    from sagaworks.activities.errors import ErrorClass, error

BREAKER = "billing-api"


class BillingActivities:
    """The primary calls a dependency that is down, through the ``billing-api`` breaker."""

    def __init__(self, breakers: Breakers) -> None:
        self.breakers = breakers
        self.calls = 0

    def _down(self) -> str:
        self.calls += 1
        raise error(ErrorClass.EXTERNAL, "billing api unreachable")

    @activity.defn
    def charge_by_api(self, amount: int) -> str:
        return self.breakers.call(BREAKER, self._down)

    @activity.defn
    def charge_later(self, amount: int) -> str:
        return f"queued {amount} for later"


@workflow.defn
class BillingProbe:
    @workflow.run
    async def run(self, amount: int) -> Guarded[str]:
        return await guarded(
            BillingActivities.charge_by_api,
            amount,
            fallback=BillingActivities.charge_later,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=3),
        )
