"""``/api/schedules``: Temporal Schedules of catalog families, as ``saga schedule`` does them.

Both go through :mod:`client.schedules`, so a schedule made here is one the CLI lists and
drives, and the other way round: the family's workflow id, a validated input, overlapping
runs skipped.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from temporalio.client import ScheduleAlreadyRunningError
from temporalio.service import RPCError, RPCStatusCode

from sagaworks import registry
from sagaworks.client import schedules
from sagaworks.client.api.errors import ApiError, ErrorBody, validation_response
from sagaworks.client.api.models import NewSchedule, ScheduleAccepted, ScheduleDescription, ScheduleSummary
from sagaworks.client.api.routes_runs import ERRORS, temporal
from sagaworks.contracts.common import Text

SCHEDULE_ERRORS = {
    **ERRORS,
    409: {"model": ErrorBody, "description": "The schedule id is taken"},
    403: {"model": ErrorBody, "description": "The configuration refuses this input"},
}


def build_router() -> APIRouter:
    router = APIRouter(tags=["schedules"])

    @router.get("/api/schedules", response_model=list[ScheduleSummary], responses=ERRORS)
    async def list_all(request: Request) -> list[dict[str, Any]]:
        """Every schedule of the namespace: id, workflow type, paused, next run."""
        return await schedules.list_schedules(temporal(request))

    @router.post("/api/schedules", status_code=201, response_model=ScheduleDescription, responses=SCHEDULE_ERRORS)
    async def create(request: Request, body: NewSchedule) -> JSONResponse:
        """Run a family on a cron expression (UTC); a run still going skips the next."""
        fam = registry().family(body.family.value)
        try:
            arg = fam.parse(body.input)
        except ValidationError as invalid:
            # Named as in the request body: ``input.<field>``.
            return validation_response([{**e, "loc": ("input", *e["loc"])} for e in invalid.errors()])
        client = temporal(request)
        try:
            handle = await schedules.create_schedule(
                client,
                fam,
                arg,
                cron=body.cron,
                schedule_id=body.schedule_id,
                task_queue=request.app.state.settings.task_queue,
                paused=body.paused,
            )
        except ScheduleAlreadyRunningError:
            raise ApiError(
                409, "ScheduleConflict", "a schedule with that id exists already", field="schedule_id"
            ) from None
        except RPCError as error:
            if error.status != RPCStatusCode.INVALID_ARGUMENT:
                raise
            # The server parses the cron expression: what it refuses is the caller's input.
            raise ApiError(422, "InvalidRequest", f"cron: {error.message}", field="cron") from None
        described = await schedules.describe_schedule(client, handle.id)
        # The id comes from the input (any text): quoted, as a header is Latin-1.
        location = f"/api/schedules/{quote(handle.id, safe='')}"
        return JSONResponse(described, status_code=201, headers={"Location": location})

    @router.get("/api/schedules/{schedule_id}", response_model=ScheduleDescription, responses=ERRORS)
    async def describe(request: Request, schedule_id: str) -> dict[str, Any]:
        """Spec, state, recent and next runs, and how many runs were skipped as overlaps."""
        return await schedules.describe_schedule(temporal(request), schedule_id)

    @router.delete("/api/schedules/{schedule_id}", status_code=204, responses=ERRORS)
    async def delete(request: Request, schedule_id: str) -> Response:
        """Delete the schedule (the runs it started are kept)."""
        await schedules.delete_schedule(temporal(request), schedule_id)
        return Response(status_code=204)

    for action, doc in [
        ("pause", "Pause: no runs until unpaused (an optional JSON string body is the note)."),
        ("unpause", "Unpause (an optional JSON string body is the note)."),
        ("trigger", "Run the schedule's action now, under its overlap policy (skipped while one runs)."),
    ]:

        def make(action: str = action) -> Any:
            async def control(
                request: Request, schedule_id: str, note: Text | None = Body(None, max_length=1000)
            ) -> JSONResponse:
                client = temporal(request)
                if action == "trigger":
                    await schedules.trigger_schedule(client, schedule_id)
                else:
                    await schedules.set_paused(client, schedule_id, action == "pause", note)
                return JSONResponse(
                    ScheduleAccepted(schedule_id=schedule_id, action=action).model_dump(), status_code=202
                )

            return control

        router.add_api_route(
            f"/api/schedules/{{schedule_id}}/{action}",
            make(),
            methods=["POST"],
            status_code=202,
            response_model=ScheduleAccepted,
            responses=ERRORS,
            name=f"{action}_schedule",
            description=doc,
        )
    return router
