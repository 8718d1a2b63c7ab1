"""The API's response bodies (its request bodies are the catalog's input models)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict

from sagaworks import registry
from sagaworks.client.api.errors import ErrorBody
from sagaworks.client.query_metrics import QueryMetrics
from sagaworks.client.stats import ActivityStats

FamilyName = enum.Enum("FamilyName", {f.name: f.name for f in registry().families}, type=str)  # type: ignore[misc]  # an Enum built from the registry, so /openapi.json lists the families
"""A catalog family's name (an enum, so ``/openapi.json`` lists them)."""


class Sample(BaseModel):
    name: str
    input: dict[str, Any]


class CatalogEntry(BaseModel):
    name: str
    workflow_type: str
    description: str
    accepts: list[str]
    """Signals and updates a run of the family accepts (besides cancel)."""
    samples: list[Sample]
    input_schema: dict[str, Any]


class StartedRun(BaseModel):
    workflow_id: str
    run_id: str | None
    family: str
    ui: str
    """The run in the Temporal Web UI."""
    links: dict[str, str]
    """This API's status, result and events URLs of the run."""


class RunSummary(BaseModel):
    workflow_id: str
    run_id: str | None
    type: str
    family: str | None
    status: str
    started: datetime | None
    closed: datetime | None


class RunsPage(BaseModel):
    runs: list[RunSummary]
    next_page_token: str | None
    """Pass as ``page_token`` for the next page; null on the last."""


class RunDescription(RunSummary):
    ui: str
    progress: dict[str, Any] | str | None
    """The run's ``status`` query answer, or why it is unavailable."""


class FailureEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str | None
    message: str


class RunResult(BaseModel):
    workflow_id: str
    status: str
    result: Any = None


class RunEnd(BaseModel):
    """The ``result`` event of a run's event stream: its result, or its failure chain."""

    workflow_id: str
    status: str
    result: Any = None
    """When COMPLETED."""
    failure: list[FailureEntry] | None = None
    """When it failed, was canceled, terminated or timed out: outermost first."""


class FailedRun(ErrorBody):
    workflow_id: str
    status: str
    failure: list[FailureEntry]
    """The failure and its causes, outermost first."""


class Accepted(BaseModel):
    workflow_id: str
    action: str
    """cancel, pause, resume or the signal's name."""


class UpdateResult(BaseModel):
    workflow_id: str
    update: str
    result: Any = None


class FamilyMetrics(BaseModel):
    counts: dict[str, int]
    """Runs per status, from visibility."""
    total: int
    step_timings: dict[str, ActivityStats]
    """Per activity type, from the histories of the family's latest closed runs."""
    runs_sampled: int


class Metrics(BaseModel):
    families: dict[str, FamilyMetrics]


class CircuitBreakers(BaseModel):
    breakers: list[dict[str, Any]]
    available: bool
    """False when the API has no database to read the breakers from (``DATABASE_URL``)."""
    detail: str


class WorkflowMetrics(Metrics):
    """``GET /api/workflow/metrics``: :class:`Metrics` and the query family's KPIs."""

    query: QueryMetrics
    """Success rate by step, time per agent (p50/p95) and attempts per execution, from the
    histories of the latest query runs."""
    breakers: CircuitBreakers
    breaker_activations: dict[str, int]
    """How many times each breaker opened, ever."""


class Check(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: str
    """ok, or degraded when a check fails (then the answer is a 503)."""
    temporal: Check
    database: Check
    workers: Check


def _cron_field(value: str) -> str:
    """One cron field: ``*``, ``*/N``, a value or a comma-separated list of values."""
    return rf"(\*(/[1-9][0-9]?)?|({value})(,({value}))*)"


CRON_PATTERN = (
    "^(@(yearly|annually|monthly|weekly|daily|hourly)|"
    + " ".join(
        [
            _cron_field("[0-5]?[0-9]"),
            _cron_field("1?[0-9]|2[0-3]"),
            _cron_field("[1-9]|[12][0-9]|3[01]"),
            _cron_field("[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"),
            _cron_field("[0-7]|SUN|MON|TUE|WED|THU|FRI|SAT"),
        ]
    )
    + ")$"
)
"""The cron expressions the schema documents, all of which Temporal accepts. Ranges
(``MON-FRI``, start before end) are accepted too; a pattern cannot tell their order."""


def _one_shape_per_family(schema: dict[str, Any]) -> None:
    """Document ``input`` as the family's own input (one alternative per family), which is
    how it is validated, rather than as any object."""
    shared = {name: value for name, value in schema["properties"].items() if name not in ("family", "input")}
    schema["oneOf"] = [
        {
            "type": "object",
            "additionalProperties": False,
            "required": schema["required"],
            "properties": {
                "family": {"const": fam.name},
                **shared,
                # The start routes' bodies: FastAPI names each component after its model.
                "input": {"$ref": f"#/components/schemas/{fam.input_model.__name__}"},
            },
        }
        for fam in registry().families
    ]
    for key in ("type", "properties", "required", "additionalProperties"):
        schema.pop(key, None)


class NewSchedule(BaseModel):
    """``POST /api/schedules``: what ``saga schedule create`` takes."""

    # Strict as the family inputs are (``paused: 0`` is no boolean); the family's name is
    # read from its JSON string.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_one_shape_per_family)

    family: Annotated[FamilyName, Strict(False)]
    cron: str = Field(
        min_length=1,
        max_length=200,
        examples=["0 7 * * MON"],
        json_schema_extra={"pattern": CRON_PATTERN},
    )
    """A cron expression, in UTC: minute, hour, day of month, month, day of week, each ``*``,
    ``*/N``, a value, a list of values or a range (start before end); or ``@daily``..."""
    input: dict[str, Any]
    """The family's input, validated as a start is (errors name ``input.<field>``)."""
    schedule_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,200}$")
    """Default: ``schedule-<the family's workflow id>``."""
    paused: bool = False


class ScheduleSummary(BaseModel):
    schedule_id: str
    workflow_type: str | None
    paused: bool
    next: str | None
    """The next run's time (ISO 8601), none when paused or past its end."""


class ScheduledRun(BaseModel):
    scheduled_at: str | None
    started_at: str | None
    workflow_id: str | None
    run_id: str | None


class ScheduleDescription(BaseModel):
    schedule_id: str
    workflow_type: str | None
    cron: list[str]
    paused: bool
    note: str | None
    overlap: str
    actions: int
    """Runs started."""
    skipped_overlap: int
    """Runs skipped because the previous one was still going."""
    running: list[str]
    recent: list[ScheduledRun]
    next: list[str | None]


class ScheduleAccepted(BaseModel):
    schedule_id: str
    action: str
    """pause, unpause or trigger."""
