"""Contracts of the query family: a question in, a plan, the rows and a chart out.

A person asks a question about the sample data (or their own allow-listed tables); the
NLP agent turns it into a :class:`QueryPlan`, the data agent runs it as one guarded
SELECT, the viz agent draws the rows. Every model here crosses a process boundary
(Temporal payloads, the remote agents' HTTP bodies), so they import nothing but pydantic.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from sagaworks import StepStatus, StrictModel, Text

Aggregation = Literal["count", "sum", "avg", "min", "max"]
DatePart = Literal["year", "month", "day"]
Comparison = Literal["=", "!=", "<", "<=", ">", ">="]
AgentName = Literal["nlp", "data", "viz"]
AGENTS: tuple[AgentName, ...] = ("nlp", "data", "viz")
ChartKind = Literal["bar", "line", "scatter", "table"]

QUERY_STEPS: tuple[AgentName, ...] = AGENTS
"""The run's steps, one per agent (the health check before them is no step: it runs again
in a restarted run, being about now)."""
AGENT_UNAVAILABLE = "AgentUnavailable"
"""The error type of a run whose required agent failed its pre-flight health check."""

MAX_ROWS = 1000
"""The most rows a query may return: the data agent's LIMIT is never larger."""


def query_workflow_id(request_id: str) -> str:
    """The workflow id of a query run: one per request (a question may be asked again)."""
    return f"query-{request_id}"


class QueryInput(StrictModel):
    """Start a query run: a question in plain language about the configured tables."""

    question: Text = Field(min_length=3, max_length=500)
    request_id: Text = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,64}$")
    """Names the run (``query-<request_id>``); empty: a fresh id per start."""
    max_rows: int = Field(default=200, ge=1, le=MAX_ROWS)
    """How many rows the result carries (the chart uses all the query returned)."""
    pause_between_agents_seconds: float = Field(default=0, ge=0, le=3600)
    """A delay between agents, for demos of pause, resume and cancel."""
    resume: SkipJsonSchema[QueryResume | None] = None
    """Only in runs restarted before the step runner's restart (:class:`QueryResume`).
    Not in the JSON schema (forms, OpenAPI); catalog parsing refuses it from callers."""


class Measure(StrictModel):
    """A value column of the result: an aggregate (``count`` of rows needs no column) or a
    plain column when the plan does not aggregate."""

    column: str | None = Field(default=None, max_length=64)
    aggregation: Aggregation | None = None

    @property
    def alias(self) -> str:
        """The measure's output column name."""
        if self.aggregation is None:
            return self.column or "value"
        return f"{self.aggregation}_{self.column}" if self.column else "count"


class Dimension(StrictModel):
    """A grouping (or, without aggregation, a label) column, optionally a part of a date."""

    column: str = Field(max_length=64)
    date_part: DatePart | None = None

    @property
    def alias(self) -> str:
        """The dimension's output column name."""
        return self.date_part or self.column


class Filter(StrictModel):
    """``column [date part] op value``."""

    column: str = Field(max_length=64)
    date_part: DatePart | None = None
    op: Comparison
    value: str | int | float


class Ordering(StrictModel):
    """Sort by an output column (a measure's or dimension's alias)."""

    by: str = Field(max_length=80)
    descending: bool = False


class QueryPlan(StrictModel):
    """What to compute: a typed, validated plan (or, from an LLM, a SQL text to guard)."""

    table: str = Field(max_length=64)
    measures: list[Measure] = Field(default_factory=list, max_length=8)
    dimensions: list[Dimension] = Field(default_factory=list, max_length=4)
    filters: list[Filter] = Field(default_factory=list, max_length=8)
    order_by: list[Ordering] = Field(default_factory=list, max_length=4)
    limit: int | None = Field(default=None, ge=1, le=MAX_ROWS)
    sql: str | None = Field(default=None, max_length=4000)
    """SQL an LLM wrote instead of a plan; the data agent guards it like any other."""
    explanation: str = Field(default="", max_length=500)
    """How the question was read, in words."""


class ColumnInfo(StrictModel):
    name: str
    kind: Literal["number", "text", "date"]
    synonyms: list[str] = Field(default_factory=list)
    values: list[str] = Field(default_factory=list)
    """For a text column with few distinct values: those values (the parser matches them)."""
    value_synonyms: dict[str, list[str]] = Field(default_factory=dict)
    """Other words for some of :attr:`values` (``rainy`` for ``rain``)."""


class TableInfo(StrictModel):
    name: str
    synonyms: list[str] = Field(default_factory=list)
    label: str | None = None
    """The column that names a row (e.g. a car's name), shown when rows are listed."""
    columns: list[ColumnInfo]

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)


class Schema(StrictModel):
    """The tables a question may be about, with what the parser needs to read it."""

    tables: list[TableInfo]

    def table(self, name: str) -> TableInfo | None:
        return next((t for t in self.tables if t.name == name), None)


class PlanInput(StrictModel):
    question: Text
    catalog: Schema | None = None
    """The tables the question may be about; None: those of the agent's data source."""


class PlanResult(StrictModel):
    plan: QueryPlan
    produced_by: str
    """``<agent>:<provider>``, e.g. ``nlp-agent:groq`` or ``offline-parser``."""
    fallback: str | None = None
    """Why the offline parser planned although a model is configured (the LLM gateway's
    breaker open, its budget spent, the model's answer unusable...); None otherwise."""


class DataInput(StrictModel):
    plan: QueryPlan


class DataResult(StrictModel):
    sql: str
    """The SQL that ran, in the database's dialect."""
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    """Whether the guard's LIMIT cut the result."""
    produced_by: str


class VizInput(StrictModel):
    plan: QueryPlan
    columns: list[str]
    rows: list[list[Any]]


class Chart(StrictModel):
    kind: ChartKind
    vega_lite: dict[str, Any] | None = None
    """The Vega-Lite spec (None for a table)."""
    svg: str | None = None
    """The spec rendered on the worker."""


class VizResult(StrictModel):
    chart: Chart
    produced_by: str


class AgentHealth(StrictModel):
    agent: AgentName
    mode: Literal["local", "remote"]
    up: bool
    breaker: str
    """The agent's breaker state (closed, open, half-open)."""
    detail: str = ""
    waiting_for_trial: bool = False
    """Not called now because its breaker is open until its trial time (it may be up)."""
    rate_limited: bool = False
    """Whether its calls go to the rate-limited LLM task queue (an LLM provider or a
    remote NLP agent; the offline parser in the worker needs no rate limit)."""


class HealthInput(StrictModel):
    agents: list[AgentName]


class HealthReport(StrictModel):
    agents: list[AgentHealth]

    def of(self, agent: AgentName) -> AgentHealth:
        return next(a for a in self.agents if a.agent == agent)


class QueryResume(StrictModel):
    """What a run restarted before the step runner's restart carried in its input: the
    source run's plan and rows. No restart writes one now (``saga restart ID --from
    STEP`` hands results over through the step runner); it is read so that those runs
    replay."""

    from_stage: str
    source_workflow_id: str
    nlp: PlanResult | None = None
    data: DataResult | None = None


class QueryResult(BaseModel):
    """What a query run returns."""

    question: str
    plan: QueryPlan
    sql: str
    columns: list[str]
    rows: list[list[Any]]
    """At most the input's ``max_rows``."""
    row_count: int
    """Rows the query returned (before the ``max_rows`` cut)."""
    truncated: bool
    chart: Chart
    """A chart, or ``kind="table"`` when no chart fits or the viz agent was unavailable."""
    produced_by: dict[str, str]
    """Which agent or fallback produced each part: ``plan``, ``rows``, ``chart``."""
    fallbacks: list[str]
    resumed_from: str | None = None
    """The run whose earlier agents' outcomes a restarted run took over."""


QueryState = Literal["running", "paused", "completed", "failed", "canceled"]


class QueryStatus(StepStatus):
    """The ``status`` query of a query run: the step runner's (``plan``: nlp, data, viz),
    with the health check counted first in ``done``/``total`` and ``completed_steps``."""

    current_agent: AgentName | None = None
    failed_steps: list[str] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)


ResultT = TypeVar("ResultT")


class AgentError(BaseModel):
    type: str
    """The error class (``InvalidInput``, ``ModelError``...)."""
    message: str
    retryable: bool
    next_retry_seconds: float | None = None


class AgentReply(BaseModel, Generic[ResultT]):
    """The one response format of every remote agent: a result or an error, never both."""

    agent: AgentName
    ok: bool
    result: ResultT | None = None
    error: AgentError | None = None
    elapsed_ms: float


QueryInput.model_rebuild()
