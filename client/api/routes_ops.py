"""The catalog, metrics, health, circuit breakers, ticket queues and the singular ``/api/workflow/`` aliases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, create_engine, text
from temporalio.service import RPCError

from sagaworks import Family, registry
from sagaworks._breakers import read_breaker_statuses
from sagaworks.client.api.models import (
    Accepted,
    CatalogEntry,
    CircuitBreakers,
    FamilyMetrics,
    Health,
    Metrics,
    RunDescription,
    Sample,
    WorkflowMetrics,
)
from sagaworks.client.api.routes_runs import ERRORS, RUN_ERRORS, temporal
from sagaworks.client.query_metrics import query_metrics
from sagaworks.client.runs import count_runs
from sagaworks.client.stats import activity_stats
from sagaworks.client.tickets import TicketRow, list_tickets, ticket_query
from sagaworks.client.workers import pollers_detail, workflow_pollers
from sagaworks.contracts.common import Text
from sagaworks.contracts.support import Priority, TicketState, TicketType

HEALTH_TIMEOUT = timedelta(seconds=5)


def catalog_entry(fam: Family[Any]) -> CatalogEntry:
    return CatalogEntry(
        name=fam.name,
        workflow_type=fam.workflow_type,
        description=fam.description,
        accepts=list(fam.accepts),
        input_schema=fam.input_schema(),
        # An installation without samples/ (a slim image) serves the catalog without them.
        # A fresh suffix on the rerun field (the order id) each time, so a sample runs again.
        samples=[
            Sample(name=path.name, input=fam.sample_data(sample, uuid.uuid4().hex[:6]))
            for sample, path in zip(fam.samples, fam.sample_paths(), strict=True)
            if path.is_file()
        ],
    )


async def _family_metrics(request: Request, fam: Family[Any], runs: int) -> FamilyMetrics:
    client = temporal(request)
    counts, stats = await asyncio.gather(
        count_runs(client, fam), activity_stats(client, family=fam, query="ExecutionStatus != 'Running'", limit=runs)
    )
    timings = {step["activity_type"]: step for step in stats["activities"]}
    return FamilyMetrics(
        counts=counts, total=sum(counts.values()), step_timings=timings, runs_sampled=stats["workflows"]
    )


async def metrics(request: Request, runs: int = Query(20, ge=0, le=200)) -> Metrics:
    """Runs per family and status (visibility), and step timings from the histories of each
    family's ``runs`` latest closed runs (kept for ``SAGAWORKS_API_METRICS_CACHE_SECONDS``)."""

    async def compute() -> Metrics:
        results = await asyncio.gather(*(_family_metrics(request, fam, runs) for fam in registry().families))
        return Metrics(families={fam.name: result for fam, result in zip(registry().families, results, strict=True)})

    # Every family's latest histories are read: a dashboard polling this shares one answer.
    return await request.app.state.metrics_cache.get(("families", runs), compute)


async def workflow_metrics(request: Request, runs: int = Query(20, ge=0, le=200)) -> WorkflowMetrics:
    """Every family's metrics (as ``/api/metrics``), and for the query family
    success rate by step, time per agent and the retry attempt distribution from the
    histories of its ``runs`` latest runs, with breaker activations (trips) per breaker."""
    query = request.app.state.metrics_cache.get(("query", runs), lambda: query_metrics(temporal(request), limit=runs))
    families, query, breakers = await asyncio.gather(metrics(request, runs), query, _breakers(request))
    return WorkflowMetrics(
        families=families.families,
        query=query,
        breakers=breakers,
        breaker_activations={b["name"]: b["trips"] for b in breakers.breakers},
    )


async def _breakers(request: Request) -> CircuitBreakers:
    """Every breaker the workers share, read from the application database."""
    engine = _engine(request)
    if engine is None:
        return CircuitBreakers(
            breakers=[], available=False, detail="DATABASE_URL is not set: breakers are not readable"
        )
    statuses = await asyncio.to_thread(read_breaker_statuses, engine)
    detail = f"{len(statuses)} breaker(s)" if statuses else "no breaker has been used yet"
    return CircuitBreakers(breakers=[s.model_dump(mode="json") for s in statuses], available=True, detail=detail)


async def _temporal_check(request: Request) -> tuple[bool, str]:
    client = temporal(request)
    try:
        await client.service_client.check_health(timeout=HEALTH_TIMEOUT)
    except (RPCError, RuntimeError) as error:
        return False, f"unreachable ({type(error).__name__})"
    return True, "reachable"


async def _workers_check(request: Request) -> tuple[bool, str]:
    client, queue = temporal(request), request.app.state.settings.task_queue
    try:
        pollers = await workflow_pollers(client, queue, timeout=HEALTH_TIMEOUT)
    except RPCError as error:
        return False, f"task queue {queue}: {error.message}"
    return pollers > 0, pollers_detail(pollers, queue)


def _engine(request: Request) -> Engine | None:
    """The application database (``DATABASE_URL``) as a plain engine, or None if unset."""
    url = request.app.state.settings.database_url
    if url is None:
        return None
    if request.app.state.database is None:
        request.app.state.database = create_engine(url, pool_pre_ping=True)
    return request.app.state.database


def _database_check(request: Request) -> tuple[bool, str]:
    url = request.app.state.settings.database_url
    if url is None:
        return True, "not configured (DATABASE_URL unset): not checked"
    # A plain connection: a probe anyone may send never creates tables (the workers own the
    # schema), and says nothing of hosts or users.
    try:
        with _engine(request).connect() as connection:  # type: ignore[union-attr]  # DATABASE_URL is set here, so there is an engine
            connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure means unreachable; say which kind
        return False, f"unreachable ({type(error).__name__})"
    return True, "reachable"


def build_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/api/catalog", response_model=list[CatalogEntry], responses=ERRORS)
    async def catalog() -> list[CatalogEntry]:
        """Every family: description, accepted signals/updates, sample inputs, input JSON Schema."""
        return [catalog_entry(fam) for fam in registry().families]

    router.add_api_route("/api/metrics", metrics, response_model=Metrics, responses=ERRORS, methods=["GET"])

    @router.get("/api/circuit-breakers/status", response_model=CircuitBreakers, responses=ERRORS)
    async def circuit_breakers(request: Request) -> CircuitBreakers:
        """Every breaker the workers share (state, failures, trips, last
        transition, next trial), read from the application database."""
        return await _breakers(request)

    @router.get("/api/tickets", response_model=list[TicketRow], responses=ERRORS, tags=["tickets"])
    async def tickets(
        request: Request,
        # Enums, so /openapi.json lists the values the filters take (``saga tickets`` also
        # takes them in any case).
        ticket_type: TicketType | None = Query(None, alias="type"),
        priority: Priority | None = None,
        state: TicketState | None = None,
        assignee: Text | None = Query(None, max_length=200),
        limit: int = Query(50, ge=1, le=500),
    ) -> list[TicketRow]:
        """Support tickets by type, priority, state and assignee, newest first: the visibility
        query on the tickets' search attributes that ``saga tickets`` sends."""
        # The enums above were checked by FastAPI: every value here is one a ticket can have.
        query = ticket_query(priority=priority, state=state, ticket_type=ticket_type, assignee=assignee)
        return await list_tickets(temporal(request), query, limit=limit)

    # The singular path, an alias kept for clients written against it.
    router.add_api_route(
        "/api/workflow/metrics",
        workflow_metrics,
        response_model=WorkflowMetrics,
        responses=ERRORS,
        methods=["GET"],
        name="alias_metrics",
    )
    return router


def build_health_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(
        "/api/health", response_model=Health, responses={503: {"model": Health, "description": "A check failed"}}
    )
    async def health(request: Request) -> JSONResponse:
        """Temporal reachable, database reachable (when configured), workers polling the task queue."""
        (temporal_ok, temporal_detail), (workers_ok, workers_detail), (db_ok, db_detail) = await asyncio.gather(
            _temporal_check(request), _workers_check(request), asyncio.to_thread(_database_check, request)
        )
        ok = temporal_ok and workers_ok and db_ok
        body = Health(
            status="ok" if ok else "degraded",
            temporal={"ok": temporal_ok, "detail": temporal_detail},  # type: ignore[arg-type]  # pydantic validates the dict into Health's check model
            database={"ok": db_ok, "detail": db_detail},  # type: ignore[arg-type]  # pydantic validates the dict into Health's check model
            workers={"ok": workers_ok, "detail": workers_detail},  # type: ignore[arg-type]  # pydantic validates the dict into Health's check model
        )
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    return router


def build_alias_router(runs_router: APIRouter) -> APIRouter:
    """``/api/workflow/{id}/status`` and ``/cancel``, singular aliases kept for clients written against them,
    served by the ``/api/workflows/`` routes' handlers."""
    router = APIRouter(tags=["operations"])
    handlers = {route.name: route.endpoint for route in runs_router.routes}  # type: ignore[attr-defined]  # every route of that router is an APIRoute
    router.add_api_route(
        "/api/workflow/{workflow_id}/status",
        handlers["get_workflow"],
        methods=["GET"],
        response_model=RunDescription,
        responses=ERRORS,
        name="alias_status",
        description="Alias of GET /api/workflows/{workflow_id}.",
    )
    router.add_api_route(
        "/api/workflow/{workflow_id}/cancel",
        handlers["cancel_workflow"],
        methods=["POST"],
        status_code=202,
        response_model=Accepted,
        responses=RUN_ERRORS,
        name="alias_cancel",
        description="Alias of POST /api/workflows/{workflow_id}/cancel.",
    )
    return router
