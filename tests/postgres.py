"""A fresh PostgreSQL database for a test or the chaos run, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

POSTGRES_URL_ENV = "SAGAWORKS_TEST_POSTGRES_URL"
"""The SQLAlchemy URL of a PostgreSQL server the tests may create databases on (.ci/run sets it)."""


def fresh_postgres_database(base_url: str, prefix: str = "sagaworks_test") -> Iterator[str]:
    """Create an empty database on ``base_url``'s server, yield its URL, drop it (even
    while connections to it remain)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # Pre-pinged: a test may restart the server (the chaos run does) while it holds a connection.
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
