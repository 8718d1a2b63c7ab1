"""The application database: engine, schema and the idempotent-step pattern.

SQLite file by default (``DATABASE_URL`` unset); PostgreSQL when
``DATABASE_URL=postgresql+psycopg://...``. The schema is created on start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, String, create_engine, event, inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DEFAULT_SQLITE_PATH = Path(".sagaworks") / "sagaworks.db"


class Base(DeclarativeBase):
    """Declarative base of every table of the application database."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class StepRecord(Base):
    """One row per idempotency key of a side-effecting step (workflow id + step).

    ``status`` is ``DONE`` once the step took effect and ``UNDONE`` once its compensation
    ran. A compensation that runs before its step (the step's response was lost, or it
    is still in flight) leaves an ``UNDONE`` tombstone, so the step can never take
    effect afterwards.
    """

    __abstract__ = True

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(64))
    """The id of what the step created (account, payment, label...); None on tombstones."""
    run_id: Mapped[str | None] = mapped_column(String(64))
    """The workflow run that owns the step: steps and undos of any other run leave it alone."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, onupdate=_utcnow
    )


DONE = "DONE"
UNDONE = "UNDONE"

RecordT = TypeVar("RecordT", bound=StepRecord)


class StepAlreadyCompensated(Exception):
    """The step's compensation already ran, so the step must not take effect now."""


class StepOwnedByAnotherRun(Exception):
    """Another workflow run already applied this key (the same order submitted again)."""


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

    ``create`` builds the record and performs the step's other writes in ``session``;
    it runs only the first time. Raises :class:`StepAlreadyCompensated` when the key's
    compensation already ran, :class:`StepOwnedByAnotherRun` when another run applied it.
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


def seal_once(session: Session, model: type[StepRecord], key: str, order_id: str, run_id: str | None) -> bool:
    """Block a step from taking effect later; return whether it is in effect now (and ours).

    A step that never took effect gets a tombstone, so no later attempt of it can take
    effect; one another run owns is left alone.
    """
    existing = session.get(model, key, with_for_update=True)
    if existing is None:
        session.add(model(key=key, order_id=order_id, status=UNDONE, run_id=run_id))
        return False
    return existing.status == DONE and not _owned_by_other(existing, run_id)


def undo_once(
    session: Session,
    model: type[StepRecord],
    key: str,
    order_id: str,
    run_id: str | None,
    revert: Callable[[Any], None],
) -> bool:
    """Undo a step once per key; return whether there was anything to undo.

    ``revert`` reverses the step's other writes; it runs only if the step took effect for
    this owner and was not undone yet. When the step never took effect a tombstone is
    written (:func:`seal_once`); a step another run owns is left alone.
    """
    if not seal_once(session, model, key, order_id, run_id):
        return False
    existing = session.get(model, key)  # locked and loaded by seal_once
    assert existing is not None
    revert(existing)
    existing.status = UNDONE
    return True


def database_url() -> str:
    """``DATABASE_URL`` when set, else a SQLite file under ``.sagaworks/``."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


class Database:
    """An engine, a session factory and the schema of the application database."""

    def __init__(self, url: str | None = None) -> None:
        """Connect to ``url`` (default :func:`database_url`) and create missing tables."""
        self.url = url or database_url()
        self.engine = _make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._schema_lock = threading.Lock()
        self._tables_created = 0
        self._create_missing_tables()

    def _create_missing_tables(self) -> None:
        """Create the tables of the models declared since the last call.

        A family's modules (and so its tables) are imported when the worker first builds
        its activities, after the database was opened: each transaction checks first.
        """
        if len(Base.metadata.tables) == self._tables_created:
            return
        with self._schema_lock:
            declared = len(Base.metadata.tables)
            if declared != self._tables_created:
                Base.metadata.create_all(self.engine)
                _add_missing_columns(self.engine)
                self._tables_created = declared

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any exception."""
        self._create_missing_tables()
        with self._sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _add_missing_columns(engine: Engine) -> None:
    """Add columns that newer code declares to tables an older version created.

    Only additive, nullable columns are ever added this way; anything else needs a real
    migration tool.
    """
    with engine.begin() as connection:
        inspector = inspect(connection)  # on this connection: a second one would wait for its lock
        for table in Base.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    connection.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


def _make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    # pysqlite's own transaction handling defers BEGIN and never takes the write lock up
    # front; concurrent writers then deadlock on lock upgrade. Take it at BEGIN instead.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
