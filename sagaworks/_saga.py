"""The Saga helper: register a compensation for each step, undo them when the saga fails.

Use it as an async context manager inside a workflow::

    async with Saga() as saga:
        saga.add_compensation(refund_payment, undo_input, step="charge_payment")
        await workflow.execute_activity(charge_payment, charge_input, **policies.DATABASE_WRITE)

On a failure (an activity, child workflow or application error) the compensations run in
reverse order of registration (or all at once with ``parallel=True``) and the saga raises a
non-retryable ``ApplicationError`` of type ``SagaCompensated`` whose cause is the original
failure and whose details hold a :class:`SagaReport`. On cancellation they run too, shielded
from further cancellation, and the cancellation is re-raised so the workflow ends CANCELED.
Any other exception (a bug in workflow code) compensates nothing: it fails the workflow task,
and the workflow resumes where it was once a fixed worker is deployed.

The saga tracks where the run stands (:attr:`Saga.state`), so a ``status`` query answers
``failed`` or ``canceled`` once it ended so, without the workflow keeping its own state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    is_cancelled_exception,
)
from temporalio.exceptions import (
    TimeoutError as TemporalTimeoutError,
)

from sagaworks import policies
from sagaworks._concurrency import run_to_completion
from sagaworks._models import CompensationRecord, SagaReport

SagaState = Literal["running", "compensating", "completed", "failed", "canceled"]
"""Where a saga stands: ``running`` until its block ends, ``compensating`` while it undoes
its steps, then ``completed``, ``failed`` or ``canceled``."""


@dataclass(frozen=True)
class _Compensation:
    step: str
    activity: Callable[..., Any] | str
    arg: Any
    options: policies.ActivityOptions


class Saga:
    """Collects compensations while a saga runs and runs them if it cannot finish."""

    def __init__(self, *, parallel: bool = False, options: policies.ActivityOptions | None = None) -> None:
        """Create a saga.

        Args:
            parallel: Run compensations concurrently instead of in reverse order.
            options: Timeouts and retry policy of every compensation activity unless
                :meth:`add_compensation` overrides them; defaults to
                ``policies.COMPENSATION``, which retries for up to a day.
        """
        self._parallel = parallel
        self._options = options or policies.COMPENSATION
        self._pending: list[_Compensation] = []
        self._records: list[CompensationRecord] = []
        self.current_step: str | None = None
        """The step running now, if the caller says; the report names it when the failure
        does not (a local activity's failure carries no activity type)."""
        self.state: SagaState = "running"
        """Where the saga stands; set by the ``async with`` block as it ends."""

    @property
    def has_compensations(self) -> bool:
        """Whether any compensation was registered (run or still pending)."""
        return bool(self._pending or self._records)

    @property
    def records(self) -> list[CompensationRecord]:
        """Compensations run so far, in the order they finished."""
        return list(self._records)

    def add_compensation(
        self,
        activity: Callable[..., Any] | str,
        arg: Any,
        *,
        step: str,
        options: policies.ActivityOptions | None = None,
    ) -> None:
        """Register the activity (the function or its registered name) that undoes ``step``.

        Register it before the step runs when the step may take effect and still fail
        (a lost response, a timeout): the compensation must then be safe to run for a
        step that never happened.
        """
        self._pending.append(_Compensation(step, activity, arg, options or self._options))

    async def compensate(self) -> list[CompensationRecord]:
        """Run every registered compensation not yet run and return their records.

        A compensation that still fails once its retry policy gives up is recorded as
        failed; the others run regardless.
        """
        pending, self._pending = list(reversed(self._pending)), []
        if self._parallel:
            await asyncio.gather(*(self._run(c) for c in pending))
        else:
            for compensation in pending:
                await self._run(compensation)
        return self.records

    async def _run(self, compensation: _Compensation) -> None:
        name = getattr(compensation.activity, "__name__", str(compensation.activity))
        try:
            await workflow.execute_activity(
                compensation.activity,
                compensation.arg,
                summary=f"compensate {compensation.step}",
                **compensation.options,
            )
        except ActivityError as err:
            workflow.logger.error("Compensation of %s failed", compensation.step)
            self._records.append(
                CompensationRecord(
                    step=compensation.step,
                    activity=name,
                    outcome="failed",
                    error=_root_message(err),
                )
            )
        else:
            self._records.append(CompensationRecord(step=compensation.step, activity=name, outcome="compensated"))

    async def __aenter__(self) -> Saga:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        # Never suppresses: an ending exception is compensated, then re-raised or reported as a
        # saga error; the type says so, so that a checker sees code after the block as reached
        # only without an exception.
        if exc is None:
            self.state = "completed"
            return False
        if not ends_saga(exc):
            return False
        self.state = "compensating"
        # A further cancellation must not interrupt compensation.
        await run_to_completion(self.compensate(), reraise_cancel=False)
        self.end(exc)
        if is_cancelled_exception(exc):
            return False
        report = SagaReport(
            failed_step=_failed_step(exc) or self.current_step,
            cause=_root_message(exc),
            compensations=self.records,
        )
        verdict = "compensated" if report.fully_compensated else "compensation incomplete"
        raise ApplicationError(
            f"saga failed at {report.failed_step or 'workflow'}: {report.cause} ({verdict})",
            report,
            type="SagaCompensated" if report.fully_compensated else "SagaCompensationFailed",
            non_retryable=True,
        ) from exc

    def end(self, exc: BaseException) -> None:
        """Record that the saga ended on ``exc``: ``canceled`` or ``failed``."""
        self.state = "canceled" if is_cancelled_exception(exc) else "failed"


def ends_saga(exc: BaseException) -> bool:
    """Whether ``exc`` ends a saga (a failure, a timeout or a cancellation), rather than
    failing the workflow task as a bug in workflow code does."""
    return is_cancelled_exception(exc) or isinstance(exc, (FailureError, asyncio.TimeoutError))


def _failed_step(err: BaseException) -> str | None:
    if isinstance(err, ActivityError):
        return err.activity_type
    if isinstance(err, ChildWorkflowError):
        return err.workflow_type
    return None


SAGA_ERROR_TYPES = ("SagaCompensated", "SagaCompensationFailed")


def reported_error(err: BaseException) -> BaseException:
    """The failure an activity or workflow reported, beneath Temporal's wrappers.

    Skips ActivityError, ChildWorkflowError and saga errors; stops there, because what
    lies deeper (a library's exception) is the reporter's detail, not the reason.
    """
    current = err
    while current.__cause__ is not None and (
        isinstance(current, (ActivityError, ChildWorkflowError))
        or (isinstance(current, ApplicationError) and current.type in SAGA_ERROR_TYPES)
    ):
        current = current.__cause__
    return current


def failure_text(failure: BaseException) -> str:
    """The innermost cause of a failed call, as ``Type: message`` (the type by
    :func:`error_kind`): what a fan-out records for an item that failed."""
    while isinstance(failure, ActivityError) and failure.cause is not None:
        failure = failure.cause
    return f"{error_kind(failure)}: {failure.message if hasattr(failure, 'message') else failure}"


def outlived_failure(failure: BaseException) -> str:
    """:func:`failure_text` of a failed call the workflow goes on after (a lookup, a
    notice, a fan-out's item). A cancellation of the run is raised again instead: it ends
    the run and is no call's failure to record."""
    if is_cancelled_exception(failure):
        raise failure
    return failure_text(failure)


def error_kind(error: BaseException) -> str:
    """What kind of failure ``error`` is, for people: an ``ApplicationError``'s type, a
    timeout's kind by name (``TimeoutError (StartToClose)``), else the exception's class.

    A timeout's ``type`` is the SDK's ``TimeoutType``, an ``IntEnum``, which an f-string
    prints as its number ("1"): never render it directly.
    """
    if isinstance(error, ApplicationError) and error.type:
        return error.type
    if isinstance(error, TemporalTimeoutError) and error.type is not None:
        name = "".join(part.capitalize() for part in error.type.name.split("_"))
        return f"TimeoutError ({name})"
    return type(error).__name__


def error_class(err: BaseException) -> str:
    """The taxonomy class (``ApplicationError.type``) of the reported failure."""
    reported = reported_error(err)
    return (reported.type if isinstance(reported, ApplicationError) else None) or type(reported).__name__


def _root_message(err: BaseException) -> str:
    reported = reported_error(err)
    return getattr(reported, "message", None) or str(reported) or type(reported).__name__
