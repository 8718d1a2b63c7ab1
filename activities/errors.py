"""The error taxonomy: every failure an activity reports belongs to one class.

The class is the ``ApplicationError.type`` Temporal records, so retry policies
(``sagaworks/policies.py``), the UI and the CLI all see the same names.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.exc import DataError, DBAPIError, ProgrammingError, SQLAlchemyError
from temporalio.exceptions import ApplicationError, CancelledError


class ErrorClass(StrEnum):
    """The error classes of the taxonomy and the ``ApplicationError`` type of each."""

    VALIDATION = "InvalidInput"
    """Bad input: never retried; the message names the field or file.

    Not ``ValidationError``: the SDK names an uncaught exception's failure after its class,
    so a pydantic ``ValidationError`` escaping an activity (our bug, retried) would look like
    the user's bad input."""
    PROCESSING = "ProcessingError"
    """Parsing or transforming data failed: final when the data is at fault, else retried."""
    MODEL = "ModelError"
    """The LLM provider failed; retried with backoff, Retry-After honoured."""
    DATABASE = "DatabaseError"
    """The application database failed; retried with backoff."""
    EXTERNAL = "ExternalError"
    """A remote service failed; retried with backoff."""
    INTERNAL = "InternalError"
    """Our own bug (an unexpected exception): retried a few times, then final."""


LEGACY_VALIDATION = "ValidationError"
"""What :attr:`ErrorClass.VALIDATION` was called before; histories recorded then carry it."""


def is_invalid_input(error_type: str | None) -> bool:
    """Whether a failure's type says the input was rejected (today's name or the old one)."""
    return error_type in (ErrorClass.VALIDATION, LEGACY_VALIDATION)


def validation_error(message: str, *, field: str | None = None) -> ApplicationError:
    """A non-retryable error for input no retry can fix, naming the field when known."""
    text = f"{field}: {message}" if field else message
    return ApplicationError(text, {"field": field}, type=ErrorClass.VALIDATION, non_retryable=True)


def error(
    kind: ErrorClass,
    message: str,
    *,
    non_retryable: bool = False,
    next_retry_delay: timedelta | None = None,
) -> ApplicationError:
    """An error of one class of the taxonomy (``sagaworks.error``): an ``ApplicationError``
    whose type is ``kind``, retryable unless ``non_retryable``, after ``next_retry_delay``
    when given instead of the retry policy's interval."""
    return ApplicationError(message, type=kind, non_retryable=non_retryable, next_retry_delay=next_retry_delay)


_FIRST_ATTEMPT: contextvars.ContextVar[int] = contextvars.ContextVar("first_attempt", default=1)


@contextmanager
def attempts_since(first_attempt: int) -> Iterator[None]:
    """Count the attempts of the call in the block from the activity's ``first_attempt``.

    For an activity that makes several calls one after another (several chunks of a
    document): each call gets its own attempts (``activities.llm.FAILED_CALL_ATTEMPTS``...),
    not what the failures of the calls before it left.
    """
    token = _FIRST_ATTEMPT.set(first_attempt)
    try:
        yield
    finally:
        _FIRST_ATTEMPT.reset(token)


def call_attempt() -> int:
    """The attempt of the current call: the activity's, counted from :func:`attempts_since`."""
    from temporalio import activity

    return activity.info().attempt - _FIRST_ATTEMPT.get() + 1 if activity.in_activity() else 1


@contextmanager
def bugs_retried(final_after: int) -> Iterator[None]:
    """Report an unexpected exception (not an ``ApplicationError``) as our bug: an
    ``InternalError``, retryable until attempt ``final_after``.

    For activities whose policy retries without an attempt cap (bounded by time), so a
    bug fails after a few attempts instead of at the end of that time.
    """
    try:
        yield
    except (ApplicationError, CancelledError):
        raise  # ours, or the activity's cancellation: not a bug
    except Exception as err:
        raise error(
            ErrorClass.INTERNAL, f"{type(err).__name__}: {err}"[:2000], non_retryable=call_attempt() >= final_after
        ) from err


@contextmanager
def database_errors() -> Iterator[None]:
    """Report SQLAlchemy failures as ``DatabaseError``s, retryable when a retry can help.

    Lost connections, lock timeouts and a concurrent insert of the same idempotency key
    clear up on a retry, which Temporal makes under the activity's policy; a value the
    database refuses (too long, wrong type) or a bad statement does not.
    """
    try:
        yield
    except (DataError, ProgrammingError) as err:
        raise error(ErrorClass.DATABASE, f"{type(err.orig).__name__}: {err.orig}", non_retryable=True) from err
    except DBAPIError as err:
        raise error(ErrorClass.DATABASE, f"{type(err.orig).__name__}: {err.orig}") from err
    except SQLAlchemyError as err:
        raise error(ErrorClass.DATABASE, f"{type(err).__name__}: {err}") from err


class QueryErrorClass(StrEnum):
    """Error types of the query family, beside the taxonomy's classes (an open breaker's
    is the engine's, ``sagaworks.CIRCUIT_OPEN``)."""

    AGENT_UNAVAILABLE = "AgentUnavailable"
    """A required agent failed its pre-flight health check and has no fallback."""
