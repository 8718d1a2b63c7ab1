"""The API's response bodies (its request bodies are the catalog's input models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from client.api.errors import ErrorBody
from client.stats import ActivityStats


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


class Check(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: str
    """ok, or degraded when a check fails (then the answer is a 503)."""
    temporal: Check
    database: Check
    workers: Check


class CircuitBreakers(BaseModel):
    breakers: list[dict[str, Any]]
    available: bool
    """False when the API has no database to read the breakers from (``DATABASE_URL``)."""
    detail: str
