"""The three agents as plain functions over the contracts, and the NLP providers.

The worker's activities call these in-process, the remote agents (``activities.query.remote``)
serve them over HTTP; the benchmark calls them directly as the floor. Failures are
``ApplicationError``s of the taxonomy: a question that cannot be understood or SQL the
guard refuses is a non-retryable ``InvalidInput``; a database fault is a retryable
``DatabaseError``; a model fault a ``ModelError``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from sagaworks import LLM, ErrorClass, error, keep_alive, validation_error
from sagaworks.activities.query.dataset import DataSource, describe, engine_for, load_sample_data
from sagaworks.activities.query.parser import NotUnderstood, explain, parse_question
from sagaworks.activities.query.sql import QueryTimedOut, ReadOnlyRunner, SqlRefused, compile_plan, guard
from sagaworks.activities.query.viz import make_chart
from sagaworks.contracts.query import (
    DataInput,
    DataResult,
    PlanInput,
    PlanResult,
    QueryPlan,
    Schema,
    VizInput,
    VizResult,
)


class Planner(Protocol):
    """Turns a question into a plan; raises ``ApplicationError`` (InvalidInput, ModelError)."""

    @property
    def name(self) -> str:
        """Who plans, as results and the status name it (read only: a planner may derive it)."""
        ...

    def plan(self, question: str, catalog: Schema) -> QueryPlan: ...


class OfflinePlanner:
    """The deterministic parser of :mod:`activities.query.parser`."""

    name = "offline-parser"

    def plan(self, question: str, catalog: Schema) -> QueryPlan:
        try:
            return parse_question(question, catalog)
        except NotUnderstood as err:
            raise validation_error(str(err), field="question") from None


_PLAN_PROMPT = """You turn questions about a database into a query plan.
Tables (column: kind, [values]):
{tables}

Answer with one JSON object only, matching this JSON Schema:
{schema}
Use "measures" (aggregation one of count/sum/avg/min/max; count of rows has no column),
"dimensions" (a column, optionally a date_part year/month/day), "filters", "order_by"
(by an output alias: <aggregation>_<column>, count, a date part or a column) and "limit".
Question: {question}"""


FAMILY = "query"
"""The family's name to the LLM gateway: ``SAGAWORKS_LLM_QUERY_*`` configure its model."""
PLAN_TOKENS = 1024
"""The longest plan the model may write (its completion tokens)."""


class LLMPlanner:
    """Plans by the model of the LLM gateway (:class:`sagaworks.LLM`, family ``query``),
    the answer validated as :class:`QueryPlan`, with the offline parser as the declared
    fallback: when the gateway's ``llm`` breaker is open, its budget would be waited out
    past the step's deadline, the provider refuses the call or the answer is unusable,
    the parser plans and the result says why (:attr:`PlanResult.fallback`)."""

    def __init__(self, llm: LLM) -> None:
        self._llm = llm
        self._offline = OfflinePlanner()

    @property
    def name(self) -> str:
        return self._llm.settings(FAMILY).name

    def plan(self, question: str, catalog: Schema) -> QueryPlan:
        return self.plan_result(question, catalog).plan

    def plan_result(self, question: str, catalog: Schema) -> PlanResult:
        """The model's plan, or the offline parser's saying why."""
        tables = "\n".join(
            f"- {t.name}: "
            + ", ".join(f"{c.name}: {c.kind}{' ' + str(c.values) if c.values else ''}" for c in t.columns)
            for t in catalog.tables
        )
        prompt = _PLAN_PROMPT.format(tables=tables, schema=json.dumps(QueryPlan.model_json_schema()), question=question)
        with keep_alive():
            answer = self._llm.ask(
                FAMILY,
                prompt,
                parse=QueryPlan.model_validate_json,
                fallback=lambda: None,
                max_tokens=PLAN_TOKENS,
                json_mode=True,
            )
        if answer.value is None:
            plan = self._offline.plan(question, catalog)
            return PlanResult(plan=plan, produced_by="fallback:offline-parser", fallback=answer.fallback)
        plan = answer.value
        plan = plan if plan.explanation or plan.sql else plan.model_copy(update={"explanation": explain(plan)})
        return PlanResult(plan=plan, produced_by=f"nlp-agent:{answer.provider}")


def planner_from_env(llm: LLM | None = None) -> Planner:
    """The gateway's model when one is configured for the query family (``llm``, else one
    on the environment's database), else the offline parser."""
    from sagaworks import Database, database_url

    gateway = llm or LLM(Database(database_url()))
    return LLMPlanner(gateway) if gateway.configured(FAMILY) else OfflinePlanner()


@dataclass
class DataAgent:
    """Reads one data source through the SQL guard; loads the sample data on first use."""

    source: DataSource
    statement_timeout: float = 10
    _schema: Schema | None = field(default=None, init=False)
    _runner: ReadOnlyRunner | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def catalog(self) -> Schema:
        """The schema of the source (loading the sample tables the first time)."""
        with self._lock:
            if self._schema is None:
                engine = engine_for(self.source.url)
                try:
                    with database_faults():
                        if self.source.sample:
                            load_sample_data(engine)
                        self._schema = describe(engine, self.source.tables)
                finally:
                    engine.dispose()
                self._runner = ReadOnlyRunner(self.source.url, self.statement_timeout)
            return self._schema

    def allowed(self) -> dict[str, set[str]]:
        return {t.name: {c.name for c in t.columns} for t in self.catalog().tables}

    def run(self, request: DataInput) -> DataResult:
        """Guard and run the plan's SQL (the LLM's, or the plan compiled)."""
        allowed = self.allowed()
        assert self._runner is not None
        plan = request.plan
        try:
            text = plan.sql if plan.sql else compile_plan(plan)
            guarded = guard(text, allowed, self._runner.dialect)
        except SqlRefused as err:
            raise validation_error(str(err), field="plan.sql" if plan.sql else "plan") from None
        try:
            with database_faults():
                columns, rows = self._runner.run(guarded.sql)
        except QueryTimedOut as err:
            # The same query would be as slow again: final, not retried.
            raise error(ErrorClass.PROCESSING, f"{err}: {guarded.sql}", non_retryable=True) from None
        truncated = guarded.bounded and len(rows) >= guarded.limit
        return DataResult(sql=guarded.sql, columns=columns, rows=rows, truncated=truncated, produced_by="data-agent")

    def dispose(self) -> None:
        if self._runner is not None:
            self._runner.dispose()


@contextmanager
def database_faults() -> Iterator[None]:
    """Database failures while reading: a bad statement is final, the rest retryable."""
    try:
        yield
    except sqlite3.OperationalError as err:
        if "no such" in str(err) or "syntax" in str(err) or "not authorized" in str(err):
            raise error(ErrorClass.DATABASE, f"query failed: {err}", non_retryable=True) from None
        raise error(ErrorClass.DATABASE, f"database unavailable: {err}") from None
    except (sqlite3.DatabaseError, SQLAlchemyError) as err:
        raise error(ErrorClass.DATABASE, f"{type(err).__name__}: {str(err).splitlines()[0][:300]}") from None


def nlp_agent(planner: Planner, data: DataAgent, request: PlanInput) -> PlanResult:
    """Question -> plan (the catalog defaults to the data source's)."""
    catalog = request.catalog or data.catalog()
    if isinstance(planner, LLMPlanner):
        return planner.plan_result(request.question, catalog)
    return PlanResult(plan=planner.plan(request.question, catalog), produced_by=f"nlp-agent:{planner.name}")


def viz_agent(request: VizInput) -> VizResult:
    """Rows -> chart (or table)."""
    try:
        chart = make_chart(request.plan, request.columns, request.rows, title=request.plan.explanation)
    except (ValueError, TypeError) as err:
        raise error(ErrorClass.PROCESSING, f"cannot chart these rows: {err}", non_retryable=True) from None
    return VizResult(chart=chart, produced_by="viz-agent")
