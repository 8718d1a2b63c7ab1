"""Hostile SQL (from an LLM's reply or a question) is refused or bounded, and the
database never changes: on SQLite and, with SAGAWORKS_TEST_POSTGRES_URL, on PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from temporalio.exceptions import ApplicationError

from sagaworks.activities.errors import ErrorClass
from sagaworks.activities.query.agents import DataAgent, OfflinePlanner
from sagaworks.activities.query.dataset import SAMPLE_TABLES, DataSource
from sagaworks.activities.query.sql import ReadOnlyRunner
from sagaworks.contracts.query import MAX_ROWS, DataInput, QueryPlan

REFUSED: list[tuple[str, str]] = [
    ("DROP TABLE cars", "only SELECT"),
    ("DELETE FROM cars", "only SELECT"),
    ("UPDATE cars SET horsepower = 0", "only SELECT"),
    ("INSERT INTO cars (name) VALUES ('x')", "only SELECT"),
    ("CREATE TABLE evil (x INT)", "only SELECT"),
    ("ALTER TABLE cars ADD COLUMN evil INT", "only SELECT"),
    ("SELECT name FROM cars; DROP TABLE cars", "exactly one statement"),
    ("SELECT name FROM cars; -- harmless\nDELETE FROM cars", "exactly one statement"),
    ("SELECT name FROM cars /* ; */; UPDATE cars SET name = 'x'", "exactly one statement"),
    ("SELECT * FROM sqlite_master", "table sqlite_master is not allowed"),
    ("SELECT * FROM pg_catalog.pg_tables", "is not allowed"),
    ("SELECT * FROM information_schema.tables", "is not allowed"),
    ("SELECT * FROM circuit_breakers", "table circuit_breakers is not allowed"),
    ("ATTACH DATABASE '/tmp/evil.db' AS evil", "SQL refused"),
    ("PRAGMA writable_schema = 1", "only SELECT"),
    ("SELECT load_extension('/tmp/evil.so')", "function load_extension is not allowed"),
    ("SELECT name FROM cars WHERE name = load_extension('x')", "function load_extension is not allowed"),
    ("SELECT randomblob(1000000000) FROM cars", "function randomblob is not allowed"),
    ("SELECT pg_sleep(100) FROM cars", "is not allowed"),
    ("SELECT name FROM cars UNION SELECT symbol FROM stocks", "only SELECT"),
    ("SELECT name FROM cars WHERE name IN (SELECT name FROM sqlite_master)", "subqueries are not allowed"),
    ("SELECT a.name FROM cars a, cars b, cars c", "joins"),
    ("SELECT a.name FROM cars a CROSS JOIN stocks b", "joins"),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r", "WITH"),
    ("SELECT password FROM cars", "column password is not allowed"),
    ("SELECT name FROM cars LIMIT (SELECT 1)", "subqueries are not allowed"),
    ("SELECT name FROM cars LIMIT 1 + 1", "LIMIT must be a whole number"),
    ("SELECT name INTO evil FROM cars", "SELECT INTO"),
    ("SELECT name FROM cars WHERE name = ?", "parameters"),
    ("this is not sql", "SQL refused"),
]

QUESTIONS = [
    "'; DROP TABLE cars; --",
    "average horsepower by origin; DELETE FROM cars",
    "how many cars union select * from sqlite_master",
    "top 5 cars by horsepower) ; attach database 'x' as y",
]


@pytest.fixture
def agent(db_url: str) -> Iterator[DataAgent]:
    data = DataAgent(DataSource(db_url, SAMPLE_TABLES, sample=True), statement_timeout=5)
    data.catalog()
    yield data
    data.dispose()


def _fingerprint(url: str) -> str:
    """A digest of every sample table's rows and of the table list."""
    engine = create_engine(url)
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for table in SAMPLE_TABLES:
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")):
                digest.update(repr(tuple(row)).encode())
        names = sorted(engine.dialect.get_table_names(conn))
    engine.dispose()
    digest.update(repr(names).encode())
    return digest.hexdigest()


@pytest.mark.parametrize(("sql", "reason"), REFUSED, ids=[s[:40] for s, _ in REFUSED])
def test_hostile_llm_sql_is_refused_and_the_database_is_unchanged(
    agent: DataAgent, db_url: str, sql: str, reason: str
) -> None:
    before = _fingerprint(db_url)
    with pytest.raises(ApplicationError) as refused:
        agent.run(DataInput(plan=QueryPlan(table="cars", sql=sql)))
    assert refused.value.type == ErrorClass.VALIDATION and refused.value.non_retryable
    assert "plan.sql: SQL refused" in refused.value.message and reason in refused.value.message
    assert _fingerprint(db_url) == before


@pytest.mark.parametrize("question", QUESTIONS)
def test_injection_in_the_question_is_not_understood(agent: DataAgent, db_url: str, question: str) -> None:
    before = _fingerprint(db_url)
    with pytest.raises(ApplicationError, match="could not understand"):
        OfflinePlanner().plan(question, agent.catalog())
    assert _fingerprint(db_url) == before


def test_huge_limit_is_bounded(agent: DataAgent) -> None:
    result = agent.run(
        DataInput(plan=QueryPlan(table="seattle_weather", sql="SELECT date, wind FROM seattle_weather LIMIT 99999999"))
    )
    assert len(result.rows) == MAX_ROWS and result.truncated
    assert result.sql.endswith(f"LIMIT {MAX_ROWS}")


def test_missing_limit_is_added(agent: DataAgent) -> None:
    result = agent.run(DataInput(plan=QueryPlan(table="cars", sql="SELECT name FROM cars WHERE cylinders = 3")))
    assert result.sql.endswith(f"LIMIT {MAX_ROWS}") and not result.truncated and len(result.rows) == 4


def test_the_connection_itself_is_read_only(agent: DataAgent, db_url: str) -> None:
    """Even SQL that skipped the guard cannot write: the second line of defence."""
    before = _fingerprint(db_url)
    runner = ReadOnlyRunner(db_url)
    try:
        for statement in ("DELETE FROM cars", "CREATE TABLE evil (x INTEGER)", "UPDATE stocks SET price = 0"):
            with pytest.raises(Exception, match="(?i)read.?only|not authorized|prohibited|attempt to write"):
                runner.run(statement)
    finally:
        runner.dispose()
    assert _fingerprint(db_url) == before
