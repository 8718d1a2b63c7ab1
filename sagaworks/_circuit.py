"""A call guarded by a circuit breaker, from the workflow's side: when the dependency's
breaker is open, take the declared fallback and say so.

The breaker itself lives in the worker process, around the activity that calls the
dependency (:class:`sagaworks.Breakers`); an open one fails the activity fast with a
non-retryable :data:`CIRCUIT_OPEN` error whose details carry the breaker's status. This
module reads no clock and does no I/O: it is workflow code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

CIRCUIT_OPEN = "CircuitOpen"
"""The ``ApplicationError`` type of a call refused by an open breaker (named apart from
pybreaker's ``CircuitBreakerError``)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Guarded(Generic[T]):
    """A guarded call's result and whether the fallback produced it."""

    value: T
    fallback_taken: bool
    breaker: str | None = None
    """The open breaker that sent the call to the fallback."""
    reason: str | None = None
    """The open breaker's error message."""


def open_breaker(err: BaseException) -> ApplicationError | None:
    """The :data:`CIRCUIT_OPEN` error behind a failure (an activity's), if that is what it is."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type == CIRCUIT_OPEN:
            return cause
        cause = cause.__cause__
    return None


async def guarded(
    activity: Callable[..., Any] | str,
    arg: Any,
    *,
    fallback: Callable[..., Any] | str,
    fallback_arg: Any = None,
    fallback_options: Mapping[str, Any] | None = None,
    summary: str | None = None,
    **options: Any,
) -> Guarded[Any]:
    """Run ``activity(arg)``; when its breaker is open, run ``fallback`` instead (each a
    function or its registered activity name).

    ``options`` are ``workflow.execute_activity``'s (a timeout is required, a retry policy
    as the step needs); ``fallback_options`` the fallback's (default the same) and
    ``fallback_arg`` its argument (default ``arg``). Only an open breaker takes the
    fallback: any other failure, and cancellation, propagates.
    """
    name = getattr(activity, "__name__", str(activity))
    try:
        value = await workflow.execute_activity(activity, arg, summary=summary or name, **options)
        return Guarded(value=value, fallback_taken=False)
    except ActivityError as err:
        refused = None if is_cancelled_exception(err) else open_breaker(err)
        if refused is None:
            raise
    details = refused.details[0] if refused.details and isinstance(refused.details[0], dict) else {}
    breaker = details.get("name")
    workflow.logger.warning("breaker %s open: %s falls back", breaker, name)
    value = await workflow.execute_activity(
        fallback,
        arg if fallback_arg is None else fallback_arg,
        summary=f"{summary or name} (fallback: breaker {breaker or '?'} open)",
        **(options if fallback_options is None else fallback_options),
    )
    return Guarded(value=value, fallback_taken=True, breaker=breaker, reason=refused.message)
