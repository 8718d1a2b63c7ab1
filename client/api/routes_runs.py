"""``/api/workflows``: start any family, list, describe, follow and control runs.

One POST route per catalog family is generated from the registry, so each body is typed by
the family's input model in ``/openapi.json`` and validated (422 naming the field) before
anything starts.
"""

# No ``from __future__ import annotations``: the generated routes annotate their body with
# the family's model at definition time, which FastAPI reads from the signature.
import base64
import binascii
import enum
import zlib
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from sagaworks import Family, registry
from sagaworks.client.api.errors import ApiError, ErrorBody
from sagaworks.client.api.events import run_events
from sagaworks.client.api.models import (
    Accepted,
    FailedRun,
    FamilyName,
    RunDescription,
    RunEnd,
    RunResult,
    RunsPage,
    StartedRun,
    UpdateResult,
)
from sagaworks.client.connection import ui_url
from sagaworks.client.postmortem import RestartRefused, RunReport, restart_run, run_report
from sagaworks.client.restart import RestartNeedsForce
from sagaworks.client.runs import (
    RUN_STATES,
    cancel_run,
    describe_run,
    list_runs_page,
    run_outcome,
    signal_run,
    start_run,
    update_run,
    visibility_query,
)
from sagaworks.client.trace import drop_results

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 404, 413, 422, 503)}
"""Error answers every route may give, documented for clients (and for the fuzzer)."""
RUN_ERRORS = {**ERRORS, 409: {"model": ErrorBody, "description": "The run has already closed"}}


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event of the ``events`` stream, as OpenAPI 3.2 describes one: its
    name and its ``data``, a line of JSON of the given schema."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }


EVENT_SCHEMA = {
    "oneOf": [
        _event("status", {"$ref": "#/components/schemas/RunDescription"}),
        # FailureEntry, the one model it holds, is a component of the document already.
        _event(
            "result",
            {
                key: value
                for key, value in RunEnd.model_json_schema(ref_template="#/components/schemas/{model}").items()
                if key != "$defs"
            },
        ),
    ]
}
"""The events of ``GET /api/workflows/{id}/events`` (comments keep a quiet stream open)."""

StatusName = enum.Enum("StatusName", {state: state for state in RUN_STATES}, type=str)  # type: ignore[misc]  # an Enum built from RUN_STATES, so /openapi.json lists them


def temporal(request: Request) -> Client:
    return request.app.state.client


def links(workflow_id: str) -> dict[str, str]:
    quoted = quote(workflow_id, safe="")
    base = f"/api/workflows/{quoted}"
    return {"status": base, "result": f"{base}/result", "events": f"{base}/events", "console": f"/runs/{quoted}"}


def _start_route(router: APIRouter, fam: Family[Any]) -> None:
    async def start(
        request: Request,
        body: fam.input_model = Body(...),  # type: ignore[name-defined]  # the family's own input model, known when the route is built
    ) -> JSONResponse:
        # Through the family's own parse as well, which refuses what only the engine sets
        # (a restart's resume point): the same rules as ``saga run``.
        arg = fam.parse(body.model_dump(mode="json", exclude_unset=True))
        client = temporal(request)
        handle = await start_run(client, fam, arg, task_queue=request.app.state.settings.task_queue)
        started = StartedRun(
            workflow_id=handle.id,
            run_id=handle.result_run_id,
            family=fam.name,
            ui=ui_url(client, handle.id, handle.result_run_id),
            links=links(handle.id),
        )
        return JSONResponse(
            started.model_dump(mode="json"), status_code=201, headers={"Location": started.links["status"]}
        )

    router.add_api_route(
        f"/api/workflows/{fam.name}",
        start,
        methods=["POST"],
        status_code=201,
        response_model=StartedRun,
        name=f"start_{fam.name}",
        operation_id=f"start_{fam.name.replace('-', '_')}",
        summary=f"Start a run of {fam.name}",
        description=fam.description,
        responses={
            **ERRORS,
            409: {"model": ErrorBody, "description": "The workflow id is taken (reject policy)"},
            **(
                {403: {"model": ErrorBody, "description": "The configuration refuses this input"}}
                if fam.refusal
                else {}
            ),
        },
    )


PAGE_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{1,4096}$"
"""A page token as this API writes them (URL-safe base64 without padding)."""


def page_token_of(next_token: bytes | None) -> str | None:
    """The ``next_page_token`` the API returns for Temporal's: the token after its CRC-32,
    so that a token this API did not write is told apart without asking the server (which
    cannot read it either, and whose client retries it for seconds)."""
    if not next_token:
        return None
    return base64.urlsafe_b64encode(zlib.crc32(next_token).to_bytes(4, "big") + next_token).decode().rstrip("=")


def _page_token(token: str | None) -> bytes | None:
    """Temporal's token in a ``page_token`` of :func:`page_token_of`."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _unknown_page() from None
    checksum, next_token = raw[:4], raw[4:]
    if not next_token or zlib.crc32(next_token).to_bytes(4, "big") != checksum:
        raise _unknown_page()
    return next_token


def _unknown_page() -> ApiError:
    # A token of the documented shape names a page; one Temporal does not know is a page
    # not found (as an unknown run id is), not a malformed request.
    return ApiError(404, "NotFound", "page_token: no such page (not a token this API returned)", field="page_token")


def build_router() -> APIRouter:
    router = APIRouter(tags=["workflows"])
    for fam in registry().families:
        _start_route(router, fam)

    @router.post("/api/workflows/{family_name}", include_in_schema=False)
    async def start_unknown(family_name: str) -> None:
        """A POST to a name the catalog lacks (a 404 saying which names it has, not a 405)."""
        try:
            registry().family(family_name)
        except KeyError as unknown:
            raise ApiError(404, "NotFound", unknown.args[0]) from None

    @router.get("/api/workflows", response_model=RunsPage, responses=ERRORS)
    async def list_workflows(
        request: Request,
        family_name: FamilyName | None = Query(None, alias="family"),
        status: StatusName | None = None,
        page_size: int = Query(20, ge=1, le=100),
        page_token: str | None = Query(
            None,
            pattern=PAGE_TOKEN_PATTERN,
            description="A `next_page_token` this API returned; another answers 404.",
        ),
    ) -> RunsPage:
        """Runs newest first, filtered by family and status, paged through Temporal visibility."""
        query = visibility_query(
            family=registry().family(family_name.value) if family_name else None,
            status=status.value if status else None,
        )
        token = _page_token(page_token)
        try:
            rows, next_token = await list_runs_page(temporal(request), query, page_size=page_size, page_token=token)
        except RPCError as error:
            if token is None or error.status == RPCStatusCode.UNAVAILABLE:
                raise
            # The server cannot tell a forged token from a broken one; the caller sent it.
            raise _unknown_page() from None
        return RunsPage(runs=rows, next_page_token=page_token_of(next_token))  # type: ignore[arg-type]  # pydantic validates each row dict into a RunSummary

    @router.get("/api/workflows/{workflow_id}", response_model=RunDescription, responses=ERRORS)
    async def get_workflow(request: Request, workflow_id: str) -> dict[str, Any]:
        """The run's status query answer and its description (ids, status, times, UI link)."""
        timeout = request.app.state.settings.status_query_timeout
        return jsonable_encoder(await describe_run(temporal(request), workflow_id, query_timeout=timeout))

    @router.get("/api/workflows/{workflow_id}/trace", response_model=RunReport, responses=ERRORS)
    async def get_trace(
        request: Request,
        workflow_id: str,
        payloads: bool = Query(False, description="Include each step's decoded result."),
        depth: int = Query(2, ge=0, le=5, description="Child runs down to this many levels."),
    ) -> RunReport:
        """What ``saga trace --json`` prints: the run step by step (timings, attempts,
        outcomes, child runs) and, for a risk-aware run (plan-analysis), its risk view
        (assessments, alerts, mitigations with outcomes, breaker states), all derived
        from its history."""
        report = await run_report(temporal(request), workflow_id, depth=depth)
        if not payloads:
            drop_results(report.trace)
        return report

    @router.post(
        "/api/workflows/{workflow_id}/restart",
        status_code=201,
        response_model=StartedRun,
        responses={
            **ERRORS,
            409: {
                "model": ErrorBody,
                "description": "Refused: still running, not on the step runner, "
                "an unknown step or one before which a step never completed (RestartRefused); "
                "or a step before it was compensated and force is not set (RestartNeedsForce)",
            },
        },
    )
    async def restart(
        request: Request,
        workflow_id: str,
        from_stage: str = Query(..., max_length=64, description="The step to resume at."),
        force: bool = Query(False, description="Reuse steps the run compensated (their effects were undone)."),
        keep_faults: bool = Query(
            False,
            description="Keep the fault the run's input injected (inject_failure, "
            "inject_fault, fail); by default the new run drops it.",
        ),
    ) -> JSONResponse:
        """A new run that resumes at ``from_stage``, taking over the outcomes of the steps
        before it from this run's history (``saga restart ID --from STEP [--force]``). A
        restart that would reuse steps the run compensated (their effects were undone) is
        refused with the type ``RestartNeedsForce``, naming them, unless ``force``."""
        client = temporal(request)
        try:
            handle = await restart_run(client, workflow_id, from_stage, force=force, keep_faults=keep_faults)
        except RestartNeedsForce as refused:
            raise ApiError(
                409, "RestartNeedsForce", str(refused).replace("pass --force", "set force=true"), field="force"
            ) from None
        except RestartRefused as refused:
            raise ApiError(409, "RestartRefused", str(refused), field="from_stage") from None
        fam = await _family_of(client, handle.id)
        started = StartedRun(
            workflow_id=handle.id,
            run_id=handle.result_run_id,
            family=fam.name if fam else "",
            ui=ui_url(client, handle.id, handle.result_run_id),
            links=links(handle.id),
        )
        return JSONResponse(
            started.model_dump(mode="json"), status_code=201, headers={"Location": started.links["status"]}
        )

    @router.get(
        "/api/workflows/{workflow_id}/result",
        response_model=RunResult,
        responses={
            **ERRORS,
            202: {"model": RunResult, "description": "Still running"},
            409: {"model": FailedRun, "description": "The run failed, was canceled, terminated or timed out"},
        },
    )
    async def get_result(request: Request, workflow_id: str) -> JSONResponse:
        """200 with the result, 202 while running, 409 with the failure chain otherwise."""
        outcome = await run_outcome(temporal(request).get_workflow_handle(workflow_id), wait=False)
        data = jsonable_encoder(outcome.as_json())
        if outcome.status == "COMPLETED":
            return JSONResponse(data)
        if outcome.status == "RUNNING":
            return JSONResponse(data, status_code=202)
        first = (outcome.failure or [{"message": outcome.status}])[0]
        error = {"type": f"Run{outcome.status.title().replace('_', '')}", "message": first["message"]}
        return JSONResponse({"error": error, **data}, status_code=409)

    @router.get(
        "/api/workflows/{workflow_id}/events",
        response_class=StreamingResponse,
        responses={
            **ERRORS,
            200: {
                "content": {"text/event-stream": {"itemSchema": EVENT_SCHEMA}},
                "description": "`status` events as the run changes, then one `result` event",
            },
        },
    )
    async def events(request: Request, workflow_id: str) -> StreamingResponse:
        """Server-Sent Events: a ``status`` event whenever the run's status or progress
        changes, then one ``result`` event (the result or the failure chain) and the end."""
        client = temporal(request)
        await client.get_workflow_handle(workflow_id).describe()  # 404 before the stream starts
        return StreamingResponse(
            run_events(client, workflow_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _control(request: Request, workflow_id: str, action: str) -> JSONResponse:
        client = temporal(request)
        if action == "cancel":
            await cancel_run(client, workflow_id)
        else:
            _check_accepts(await _family_of(client, workflow_id), action, workflow_id, "signal")
            await signal_run(client, workflow_id, action)
        return JSONResponse(Accepted(workflow_id=workflow_id, action=action).model_dump(), status_code=202)

    for action, doc in [
        ("cancel", "Cancel the run: it compensates what it did and ends CANCELED."),
        ("pause", "Start no new step until resumed."),
        ("resume", "Go on after a pause."),
    ]:

        def make(action: str = action) -> Any:
            async def control(request: Request, workflow_id: str) -> JSONResponse:
                return await _control(request, workflow_id, action)

            return control

        router.add_api_route(
            f"/api/workflows/{{workflow_id}}/{action}",
            make(),
            methods=["POST"],
            status_code=202,
            response_model=Accepted,
            responses=RUN_ERRORS,
            name=f"{action}_workflow",
            description=doc,
        )

    @router.post(
        "/api/workflows/{workflow_id}/signals/{name}", status_code=202, response_model=Accepted, responses=RUN_ERRORS
    )
    async def send_signal(request: Request, workflow_id: str, name: str, arg: Any = Body(None)) -> JSONResponse:
        """Send a signal the run's family accepts (its ``signals`` in the catalog)."""
        client = temporal(request)
        _check_accepts(await _family_of(client, workflow_id), name, workflow_id, "signal")
        await signal_run(client, workflow_id, name, arg)
        return JSONResponse(Accepted(workflow_id=workflow_id, action=name).model_dump(), status_code=202)

    @router.post("/api/workflows/{workflow_id}/updates/{name}", response_model=UpdateResult, responses=RUN_ERRORS)
    async def run_update(request: Request, workflow_id: str, name: str, arg: Any = Body(None)) -> dict[str, Any]:
        """Run an update the run's family accepts (approve, reject, assign...) and return its result."""
        client = temporal(request)
        _check_accepts(await _family_of(client, workflow_id), name, workflow_id, "update")
        result = await update_run(client, workflow_id, name, arg)
        return {"workflow_id": workflow_id, "update": name, "result": jsonable_encoder(result)}

    return router


async def _family_of(client: Client, workflow_id: str) -> Family[Any] | None:
    return registry().family_of_type((await client.get_workflow_handle(workflow_id).describe()).workflow_type)


def _check_accepts(fam: Family[Any] | None, name: str, workflow_id: str, kind: str) -> None:
    """Refuse a signal or update the family does not declare as such (a signal sent to an
    update's name would be buffered silently and never answered)."""
    accepts = (fam.signals if kind == "signal" else fam.updates) if fam else ()
    if name not in accepts:
        raise ApiError(
            404,
            "NotAccepted",
            f"{workflow_id} ({fam.name if fam else 'not a catalog family'}) accepts the {kind}s "
            f"{', '.join(accepts) or 'none'}, not {name!r}",
            field="name",
        )
