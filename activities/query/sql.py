"""The data agent's SQL: a plan compiled to SQL, a guard every SQL text passes, a
read-only runner.

Plans and LLM-written SQL take the same road: :func:`guard` parses the text with
``sqlglot`` and refuses anything but exactly one SELECT over allow-listed tables and
columns with allow-listed functions (no joins, subqueries, CTEs, set operations), bounds
its LIMIT, and transpiles it to the database's dialect. :func:`run_readonly` then runs it
on a read-only connection (SQLite ``mode=ro`` plus an authorizer; PostgreSQL a read-only
transaction) under a statement timeout. Refusals raise :class:`SqlRefused` naming the
offending part; the database is never changed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlglot import exp

from sagaworks.contracts.query import MAX_ROWS, QueryPlan

CANONICAL = "postgres"
"""The dialect plans compile to and LLMs are asked to write."""

ALLOWED_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Extract, exp.Round, exp.Abs,
    exp.Cast, exp.Coalesce, exp.Lower, exp.Upper,
    exp.And, exp.Or, exp.Not, exp.In, exp.Between, exp.Like, exp.ILike, exp.Is,
)  # fmt: skip
"""Aggregates, date parts, a few harmless scalars and the logical operators (which sqlglot
models as functions); anything else is refused."""

_REFUSED_NODES: dict[type[exp.Expression], str] = {
    exp.With: "WITH (common table expressions) is not allowed",
    exp.CTE: "common table expressions are not allowed",
    exp.Subquery: "subqueries are not allowed",
    exp.Join: "joins (comma joins too) are not allowed: one table per query",
    exp.Union: "UNION is not allowed",
    exp.Intersect: "INTERSECT is not allowed",
    exp.Except: "EXCEPT is not allowed",
    exp.Into: "SELECT INTO is not allowed",
    exp.Lateral: "LATERAL is not allowed",
    exp.Placeholder: "parameters are not allowed",
    exp.Window: "window functions are not allowed",
}


class SqlRefused(ValueError):
    """The SQL is not allowed; the message names the part at fault."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"SQL refused: {reason}")


class QueryTimedOut(RuntimeError):
    """The statement ran past its timeout and was stopped."""


def dialect_of(url: str) -> str:
    """The sqlglot dialect of a SQLAlchemy URL."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend == "postgresql":
        return "postgres"
    raise ValueError(f"unsupported database for queries: {backend} (use SQLite or PostgreSQL)")


def compile_plan(plan: QueryPlan) -> str:
    """The plan as SQL in the canonical dialect (the guard checks it like any SQL)."""
    aggregated = any(m.aggregation for m in plan.measures)

    def column(name: str, part: str | None) -> exp.Expression:
        ref = exp.column(name)
        return exp.Extract(this=exp.var(part.upper()), expression=ref) if part else ref

    selects: list[exp.Expr] = [exp.alias_(column(d.column, d.date_part), d.alias) for d in plan.dimensions]
    for m in plan.measures:
        if m.aggregation is None:
            selects.append(exp.column(m.column or ""))
            continue
        argument: exp.Expression = exp.column(m.column) if m.column else exp.Star()
        function = {"count": exp.Count, "sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[m.aggregation]
        selects.append(exp.alias_(function(this=argument), m.alias))
    query = exp.select(*selects).from_(exp.to_table(plan.table))
    for f in plan.filters:
        value = exp.Literal.string(f.value) if isinstance(f.value, str) else exp.Literal.number(f.value)
        comparison = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}[f.op]
        query = query.where(comparison(this=column(f.column, f.date_part), expression=value))
    if aggregated and plan.dimensions:
        query = query.group_by(*(column(d.column, d.date_part) for d in plan.dimensions))
    for o in plan.order_by:
        query = query.order_by(exp.Ordered(this=exp.column(o.by), desc=o.descending, nulls_first=False))
    if plan.limit is not None:
        query = query.limit(plan.limit)
    return query.sql(dialect=CANONICAL)


@dataclass(frozen=True)
class GuardedSql:
    sql: str
    """In the target dialect, comments dropped, LIMIT bounded."""
    limit: int
    bounded: bool
    """Whether the guard imposed or lowered the LIMIT."""


def guard(
    text: str,
    allowed: Mapping[str, set[str]],
    dialect: str,
    *,
    read: str = CANONICAL,
    max_rows: int = MAX_ROWS,
) -> GuardedSql:
    """Check ``text`` against the rules above and return it ready to run in ``dialect``."""
    try:
        statements = [s for s in sqlglot.parse(text, read=read) if s is not None]
    except sqlglot.errors.SqlglotError as err:
        raise SqlRefused(f"it does not parse ({str(err).splitlines()[0][:200]})") from None
    if len(statements) != 1:
        raise SqlRefused(f"exactly one statement is allowed, got {len(statements)}")
    [statement] = statements
    if not isinstance(statement, exp.Select):
        raise SqlRefused(f"only SELECT is allowed, got {statement.key.upper()}")
    for node in statement.walk():
        for refused, what in _REFUSED_NODES.items():
            if isinstance(node, refused):
                raise SqlRefused(what)
        if isinstance(node, exp.Anonymous):
            raise SqlRefused(f"function {node.name} is not allowed")
        if isinstance(node, exp.Func) and not isinstance(node, ALLOWED_FUNCTIONS):
            raise SqlRefused(f"function {node.sql_name()} is not allowed")
    tables = list(statement.find_all(exp.Table))
    if len(tables) != 1:
        raise SqlRefused(f"exactly one table is allowed, got {len(tables)}")
    [table] = tables
    if table.args.get("db") or table.args.get("catalog") or table.name not in allowed:
        raise SqlRefused(f"table {table.sql(dialect=read)} is not allowed (allowed: {', '.join(sorted(allowed))})")
    columns = allowed[table.name]
    aliases = {a.alias for a in statement.expressions if isinstance(a, exp.Alias)}
    for ref in statement.find_all(exp.Column):
        qualifier = ref.table
        if qualifier and qualifier != table.name:
            raise SqlRefused(f"column {ref.sql(dialect=read)} is not allowed")
        if ref.name not in columns and ref.name not in aliases:
            raise SqlRefused(f"column {ref.name} is not allowed in {table.name}")
    for bound in ("offset",):
        bound_node = statement.args.get(bound)
        if bound_node is not None and not (
            isinstance(bound_node.expression, exp.Literal) and bound_node.expression.is_int
        ):
            raise SqlRefused(f"{bound.upper()} must be a whole number")
    limit_node = statement.args.get("limit")
    requested: int | None = None
    if limit_node is not None:
        value = limit_node.expression
        if not (isinstance(value, exp.Literal) and value.is_int):
            raise SqlRefused("LIMIT must be a whole number")
        requested = int(value.name)
    limit = min(requested, max_rows) if requested is not None else max_rows
    statement = statement.limit(limit, copy=True)
    if dialect == "sqlite":
        statement = statement.transform(_sqlite_date_parts)
    return GuardedSql(sql=statement.sql(dialect=dialect, comments=False), limit=limit, bounded=limit != requested)


_STRFTIME = {"YEAR": "%Y", "MONTH": "%m", "DAY": "%d"}


def _sqlite_date_parts(node: exp.Expression) -> exp.Expression:
    # SQLite has no EXTRACT: a date part is a number read from STRFTIME.
    if isinstance(node, exp.Extract):
        part = node.this.name.upper()
        if part not in _STRFTIME:
            raise SqlRefused(f"EXTRACT({part}) is not supported on SQLite")
        formatted = exp.Anonymous(this="STRFTIME", expressions=[exp.Literal.string(_STRFTIME[part]), node.expression])
        return exp.Cast(this=formatted, to=exp.DataType.build("INTEGER"))
    return node


# SQLite authorizer: reading and the functions of the guard's allow-list, nothing else.
_SQLITE_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
_SQLITE_FUNCTIONS = {"count", "sum", "avg", "min", "max", "round", "abs", "coalesce", "lower", "upper", "strftime"}


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action not in _SQLITE_ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in _SQLITE_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class ReadOnlyRunner:
    """Runs guarded SELECTs on a read-only connection with a statement timeout."""

    def __init__(self, url: str, timeout_seconds: float = 10) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        self.timeout = timeout_seconds
        self._engine: Engine | None = None
        if self.dialect == "postgres":
            self._engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)

    def run(self, sql: str) -> tuple[list[str], list[list[Any]]]:
        """The columns and rows of ``sql``; raises :class:`QueryTimedOut` past the timeout."""
        if self.dialect == "sqlite":
            return self._run_sqlite(sql)
        return self._run_postgres(sql)

    def _run_sqlite(self, sql: str) -> tuple[list[str], list[list[Any]]]:
        path = make_url(self.url).database
        if not path or path == ":memory:":
            raise ValueError("queries need a SQLite file, not an in-memory database")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=self.timeout)
        deadline = time.monotonic() + self.timeout
        try:
            conn.set_authorizer(_sqlite_authorizer)
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                cursor = conn.execute(sql)
                rows = [list(r) for r in cursor.fetchall()]
            except sqlite3.OperationalError as err:
                if "interrupted" in str(err):
                    raise QueryTimedOut(f"the query ran longer than {self.timeout:g} s and was stopped") from None
                raise
            return [d[0] for d in cursor.description], rows
        finally:
            conn.close()

    def _run_postgres(self, sql: str) -> tuple[list[str], list[list[Any]]]:
        from sqlalchemy.exc import OperationalError

        assert self._engine is not None
        with self._engine.connect() as conn:
            try:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(self.timeout * 1000)}")
                result = conn.exec_driver_sql(sql)
                columns = list(result.keys())
                rows = [list(r) for r in result.fetchall()]
            except OperationalError as err:
                if "statement timeout" in str(err.orig):
                    raise QueryTimedOut(f"the query ran longer than {self.timeout:g} s and was stopped") from None
                raise
            finally:
                conn.rollback()
        return columns, rows

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
