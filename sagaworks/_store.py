"""The exactly-once store: a side-effecting step takes effect once per step key, and its
compensation undoes it once, whatever retries, crashes, replays or resets happen.

A family declares a table per kind of step, a subclass of :class:`StepRecord` with the
columns of what the step created, and its activities call :func:`apply_once`,
:func:`undo_once` and :func:`seal_once` in one transaction of the application database
(:class:`~sagaworks.Database`) with the step's other writes. The step key is the
idempotency key the workflow derives (workflow id + step); ``saga_id`` names the saga the
step belongs to (an order id, a booking id), for the family's own queries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from sagaworks._db import Base, utcnow

DONE = "DONE"
"""The step took effect."""
UNDONE = "UNDONE"
"""The step was compensated, or sealed before it took effect (a tombstone)."""


class StepRecord(Base):
    """One row per step key of a side-effecting step (workflow id + step).

    ``status`` is ``DONE`` once the step took effect and ``UNDONE`` once its compensation
    ran. A compensation that runs before its step (the step's response was lost, or it
    is still in flight) leaves an ``UNDONE`` tombstone, so the step can never take
    effect afterwards. A tombstone has only these columns: a subclass's own columns must
    be nullable (``Mapped[str | None]``).
    """

    __abstract__ = True
    # Tables created before the column was neutral called it order_id: the database
    # renames it in place on start (sagaworks._db), keeping every row.
    __table_args__: Any = {"info": {"renamed_columns": {"order_id": "saga_id"}}}

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    """The step key: the idempotency key the workflow derives from its id and the step."""
    saga_id: Mapped[str] = mapped_column(String(64), index=True)
    """The saga the step belongs to (an order id, a booking id)."""
    status: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(64))
    """The id of what the step created (account, payment, label...); None on tombstones."""
    run_id: Mapped[str | None] = mapped_column(String(64))
    """The workflow run that owns the step: steps and undos of any other run leave it alone."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


RecordT = TypeVar("RecordT", bound=StepRecord)


class StepAlreadyCompensated(Exception):
    """The step's compensation already ran, so the step must not take effect now."""


class StepOwnedByAnotherRun(Exception):
    """Another workflow run already applied this key (the same saga submitted again)."""


def _owned_by_other(record: StepRecord, run_id: str | None) -> bool:
    # Rows written before ownership was recorded have no run id: any run may use them.
    return None not in (record.run_id, run_id) and record.run_id != run_id


def apply_once(
    session: Session,
    model: type[RecordT],
    key: str,
    run_id: str | None,
    create: Callable[[], RecordT],
) -> RecordT:
    """Apply a step once per key: return the existing record on a repeat call of its run.

    ``create`` builds the record (its ``saga_id`` and own columns) and performs the step's
    other writes in ``session``; it runs only the first time. Raises
    :class:`StepAlreadyCompensated` when the key's compensation already ran,
    :class:`StepOwnedByAnotherRun` when another run applied it.
    """
    existing = session.get(model, key, with_for_update=True)
    if existing is not None:
        if _owned_by_other(existing, run_id):
            raise StepOwnedByAnotherRun(f"{model.__tablename__} {key} belongs to run {existing.run_id}")
        if existing.status == UNDONE:
            raise StepAlreadyCompensated(f"{model.__tablename__} {key} was already compensated")
        return existing
    record = create()
    record.key, record.status, record.run_id = key, DONE, run_id
    session.add(record)
    return record


def seal_once(session: Session, model: type[StepRecord], key: str, saga_id: str, run_id: str | None) -> bool:
    """Block a step from taking effect later; return whether it is in effect now (and ours).

    A step that never took effect gets a tombstone, so no later attempt of it can take
    effect; one another run owns is left alone.
    """
    existing = session.get(model, key, with_for_update=True)
    if existing is None:
        session.add(model(key=key, saga_id=saga_id, status=UNDONE, run_id=run_id))
        return False
    return existing.status == DONE and not _owned_by_other(existing, run_id)


def undo_once(
    session: Session,
    model: type[StepRecord],
    key: str,
    saga_id: str,
    run_id: str | None,
    revert: Callable[[Any], None],
) -> bool:
    """Undo a step once per key; return whether there was anything to undo.

    ``revert`` reverses the step's other writes; it runs only if the step took effect for
    this owner and was not undone yet. When the step never took effect a tombstone is
    written (:func:`seal_once`); a step another run owns is left alone.
    """
    if not seal_once(session, model, key, saga_id, run_id):
        return False
    existing = session.get(model, key)  # locked and loaded by seal_once
    assert existing is not None
    revert(existing)
    existing.status = UNDONE
    return True
