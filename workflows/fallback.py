"""Retry, then fall back: run an activity under its retry policy and, once Temporal has
spent the policy's attempts (or the failure is final), run a named fallback activity.

The retries stay Temporal's (no loop here); this only decides what happens after them,
and says which activity's result is used, so a result built from a fallback is marked.
Cancellation is never turned into a fallback: it propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from sagaworks import error_kind, reported_error
    from sagaworks.contracts.fallback import BranchOutcome
    from sagaworks.policies import ActivityOptions

T = TypeVar("T")


def _reason(err: ActivityError) -> str:
    reported = reported_error(err)
    return f"{error_kind(reported)}: {getattr(reported, 'message', None) or reported}"


async def with_fallback(
    primary: Callable[..., T],
    arg: Any,
    options: ActivityOptions,
    *,
    fallback: Callable[..., T] | None = None,
    fallback_options: ActivityOptions | None = None,
    summary: str | None = None,
) -> tuple[T | None, BranchOutcome]:
    """The primary's result, else the fallback's, else None, with the outcome saying which.

    ``options`` carry the primary's timeouts and retry policy; ``fallback_options`` the
    fallback's (default the same).
    """
    primary_name = getattr(primary, "__name__", str(primary))
    try:
        value = await workflow.execute_activity(primary, arg, summary=summary, **options)
        return value, BranchOutcome(status="ok", activity=primary_name)
    except ActivityError as err:
        if is_cancelled_exception(err):
            raise
        reason = _reason(err)
    if fallback is None:
        return None, BranchOutcome(status="unavailable", activity=primary_name, error=reason)
    fallback_name = getattr(fallback, "__name__", str(fallback))
    try:
        value = await workflow.execute_activity(
            fallback, arg, summary=f"{summary or primary_name} (fallback)", **(fallback_options or options)
        )
    except ActivityError as err:
        if is_cancelled_exception(err):
            raise
        return None, BranchOutcome(
            status="unavailable", activity=fallback_name, error=f"{reason}; fallback: {_reason(err)}"
        )
    return value, BranchOutcome(status="fallback", activity=fallback_name, error=reason)
