"""The application database: engine, sessions and schema.

SQLite file by default (``DATABASE_URL`` unset); PostgreSQL when
``DATABASE_URL=postgresql+psycopg://...``. The schema is created on start, and tables an
older version created are brought up to date: additive nullable columns are added, and
columns a model renamed (its table's ``info["renamed_columns"]``) are renamed in place,
keeping their rows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

DEFAULT_SQLITE_PATH = Path(".sagaworks") / "sagaworks.db"


class Base(DeclarativeBase):
    """Declarative base of every table of the application database."""


def utcnow() -> datetime:
    """Now, in UTC: the default of every timestamp column."""
    return datetime.now(UTC)


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
        """Create (or bring up to date) the tables of the models declared since the last call.

        A family's modules, and so its tables, are imported when the worker first builds its
        activities, after the database was opened: each transaction checks first.
        """
        if len(Base.metadata.tables) == self._tables_created:
            return
        with self._schema_lock:
            declared = len(Base.metadata.tables)
            if declared != self._tables_created:
                Base.metadata.create_all(self.engine)
                _rename_columns(self.engine)
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


def _rename_columns(engine: Engine) -> None:
    """Rename the columns a model renamed in tables an older version created, in place.

    A table lists them as ``info={"renamed_columns": {"old": "new"}}``; SQLite (3.25 and
    later) and PostgreSQL both rename a column with its data and its indexes. Of workers
    starting at once, one renames; the others find it done.
    """
    for table in Base.metadata.sorted_tables:
        renamed: dict[str, str] = table.info.get("renamed_columns", {})
        for old, new in renamed.items():
            if _columns(engine, table.name) & {old, new} != {old}:
                continue  # a new table, or renamed already
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql(f'ALTER TABLE {table.name} RENAME COLUMN "{old}" TO "{new}"')
            except DBAPIError:
                if _columns(engine, table.name) & {old, new} != {new}:
                    raise  # not another worker's rename: a real failure


def _columns(engine: Engine, table: str) -> set[str]:
    with engine.connect() as connection:
        return {column["name"] for column in inspect(connection).get_columns(table)}


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
