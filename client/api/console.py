"""The web console at ``/``: catalog, start forms, runs list and run pages (Jinja2)."""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from temporalio.service import RPCError, RPCStatusCode

from sagaworks import registry
from sagaworks.client.api.errors import ApiError
from sagaworks.client.api.render import (
    failure_view,
    form_fields,
    interaction_forms,
    query_view,
    render_value,
    ticket_view,
    without_repeats,
)
from sagaworks.client.api.routes_ops import catalog_entry
from sagaworks.client.api.routes_runs import temporal
from sagaworks.client.api.security import SESSION_COOKIE, authorized, session_value, token_matches
from sagaworks.client.runs import RUN_STATES, describe_run, list_runs_page, run_outcome, visibility_query
from sagaworks.client.schedules import describe_schedule, list_schedules
from sagaworks.client.tickets import TICKET_STATES, TICKET_TYPES, TicketFilterInvalid, list_tickets, ticket_query
from sagaworks.contracts.support import PRIORITIES

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["render"] = render_value
templates.env.filters["tojson_pretty"] = lambda v: json.dumps(jsonable_encoder(v), indent=2)


class _LoginRequired(Exception):
    pass


def signed_in(request: Request) -> None:
    """Console pages need the token too; a browser keeps it in an HttpOnly cookie."""
    expected = request.app.state.settings.token
    if expected is not None and not authorized(request, expected):
        raise _LoginRequired


def install_login_redirect(app: Any) -> None:
    @app.exception_handler(_LoginRequired)
    async def _login(request: Request, _: _LoginRequired) -> Response:
        # Percent-encoded, so the page's own path and query come back intact after sign-in.
        target = quote(request.scope["path"], safe="/")
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse("/login?" + urlencode({"next": target}, safe="/"), status_code=303)


_URL_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")
"""The characters RFC 3986 allows in a URL. A browser parses a URL made of them the way
``urllib`` does; outside them it does not: the WHATWG URL parser strips leading and trailing
controls and spaces, drops tabs and newlines anywhere (``/\\t/evil.example`` becomes
``//evil.example``), reads ``\\`` as ``/`` and maps Unicode host names (IDNA)."""


def sign_in_target(target: str, pages: Iterable[Any]) -> str:
    """Where to go after sign-in: ``target`` if a browser reads it as one of the console
    ``pages`` (routes) on this site, else ``/`` (no open redirect).

    Accepted: a path-absolute URL (``/`` not followed by ``/``) of RFC 3986 characters only,
    whose path is a console page's. Anything a browser would rewrite first (tabs, newlines,
    ``\\``, spaces, non-ASCII) is refused rather than cleaned, so what is checked here is
    what the browser follows.
    """
    if not target.startswith("/") or target.startswith("//") or not set(target) <= _URL_CHARACTERS:
        return "/"
    path = unquote(target.split("?", 1)[0].split("#", 1)[0])
    for route in pages:
        if isinstance(route, APIRoute) and "GET" in (route.methods or ()) and route.path_regex.fullmatch(path):
            return target
    return "/"


def _compensations_shown(run: dict[str, Any]) -> bool:
    """Whether the run page lists the run's compensations (from its status query)."""
    return isinstance(run.get("progress"), dict) and bool(run["progress"].get("compensations"))


def restart_points(fam: Any, run: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps (or stages) a closed run's page offers to restart from.

    A family on the step runner: each step of its ``status`` query's plan up to the first it
    did not complete (each completed step, and the one it stopped at), with the earlier
    steps it compensated (a restart from there reuses their undone results: the page says so
    and asks before it forces it). Nothing while it runs.
    """
    from sagaworks.client.postmortem import on_step_runner

    if fam is None or run.get("status") == "RUNNING":
        return []
    progress = run.get("progress")
    if not on_step_runner(fam) or not isinstance(progress, dict):
        return []
    completed = set(progress.get("completed_steps") or [])
    compensated = [c.get("step") for c in progress.get("compensations") or [] if isinstance(c, dict)]
    points = []
    for index, step in enumerate(progress.get("plan") or []):
        earlier = (progress.get("plan") or [])[:index]
        points.append(
            {"step": step, "completed": step in completed, "undone": [s for s in earlier if s in compensated]}
        )
        if step not in completed:
            break
    return points


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    page = Depends(signed_in)

    @router.get("/", response_class=HTMLResponse, dependencies=[page])
    async def home(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request, "catalog.html", {"families": [catalog_entry(f) for f in registry().families]}
        )

    @router.get("/families/{name}", response_class=HTMLResponse, dependencies=[page])
    async def start_form(request: Request, name: str) -> HTMLResponse:
        try:
            entry = catalog_entry(registry().family(name))
        except KeyError as unknown:
            raise ApiError(404, "NotFound", unknown.args[0]) from None
        return templates.TemplateResponse(
            request, "start.html", {"family": entry, "fields": form_fields(entry.input_schema)}
        )

    @router.get("/runs", response_class=HTMLResponse, dependencies=[page])
    async def runs(request: Request, family_name: str = "", status: str = "", page: str = "") -> HTMLResponse:
        fam = registry().family(family_name) if family_name in {f.name for f in registry().families} else None
        known = status.upper() in RUN_STATES
        query = visibility_query(family=fam, status=status if known else None)
        try:
            token = bytes.fromhex(page) if page else None
        except ValueError:
            token = None  # a mangled link: start from the newest runs
        rows, next_token = await list_runs_page(temporal(request), query, page_size=25, page_token=token)
        return templates.TemplateResponse(
            request,
            "runs.html",
            {
                "runs": rows,
                "next_page": next_token.hex() if next_token else None,
                "family_name": fam.name if fam else "",
                "status": status.upper() if known else "",
                "families": [f.name for f in registry().families],
            },
        )

    @router.get("/runs/{workflow_id}", response_class=HTMLResponse, dependencies=[page])
    async def run_page(request: Request, workflow_id: str) -> HTMLResponse:
        client = temporal(request)
        run = await describe_run(client, workflow_id, query_timeout=request.app.state.settings.status_query_timeout)
        outcome = await run_outcome(client.get_workflow_handle(workflow_id), wait=False)
        fam = registry().family(run["family"]) if run["family"] else None
        data = jsonable_encoder(outcome.as_json())
        completed_query = (
            run["family"] == "query" and outcome.status == "COMPLETED" and isinstance(data.get("result"), dict)
        )
        forms = interaction_forms(fam.workflow, list(fam.accepts)) if fam else []
        approval_forms = [f for f in forms if fam and fam.approval and f["name"] in ("approve", "reject")]
        reported = run.get("progress")
        progress = reported if isinstance(reported, dict) else {}
        ticket = progress.get("ticket") or (data.get("result") if run["family"] == "support-ticket" else None)
        query = query_view(data["result"]) if completed_query else None
        if isinstance(data.get("result"), dict):
            data["result"] = without_repeats(data["result"])
        return templates.TemplateResponse(
            request,
            "run.html",
            {
                "run": jsonable_encoder(run),
                "outcome": data,
                "accepts": fam.accepts if fam else (),
                "approval": fam.approval if fam else None,
                "forms": [f for f in forms if f not in approval_forms],
                "approval_fields": approval_forms[0]["fields"] if approval_forms else [],
                "ticket": ticket_view(jsonable_encoder(ticket)) if isinstance(ticket, dict) else None,
                "restart_points": restart_points(fam, run),
                "query": query,
                "failure": failure_view(data.get("failure") or [], compensations_shown=_compensations_shown(run)),
            },
        )

    @router.get("/schedules", response_class=HTMLResponse, dependencies=[page])
    async def schedules(request: Request) -> HTMLResponse:
        client = temporal(request)
        listed = await list_schedules(client)
        described = await asyncio.gather(
            *(describe_schedule(client, row["schedule_id"]) for row in listed), return_exceptions=True
        )
        for answer in described:  # one deleted since it was listed is left out; other errors are errors
            if isinstance(answer, BaseException) and not (
                isinstance(answer, RPCError) and answer.status == RPCStatusCode.NOT_FOUND
            ):
                raise answer
        rows = [answer for answer in described if isinstance(answer, dict)]
        return templates.TemplateResponse(request, "schedules.html", {"schedules": rows})

    @router.get("/tickets", response_class=HTMLResponse, dependencies=[page])
    async def tickets(
        request: Request, type: str = "", priority: str = "", state: str = "", assignee: str = ""
    ) -> HTMLResponse:
        filters = {"type": type, "priority": priority, "state": state, "assignee": assignee}
        try:
            query = ticket_query(priority=priority, state=state, ticket_type=type, assignee=assignee)
            rows, problem = await list_tickets(temporal(request), query), None
        except TicketFilterInvalid as invalid:
            rows, problem = [], str(invalid)
        return templates.TemplateResponse(
            request,
            "tickets.html",
            {
                "tickets": rows,
                "filters": filters,
                "problem": problem,
                "types": TICKET_TYPES,
                "priorities": PRIORITIES,
                "states": TICKET_STATES,
            },
        )

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"next": sign_in_target(next, router.routes)})

    @router.post("/login")
    async def login(request: Request) -> JSONResponse:
        """Exchange the token for an HttpOnly session cookie (JSON body ``{"token": ...}``)."""
        expected = request.app.state.settings.token
        try:
            supplied = (await request.json()).get("token")
        except (ValueError, AttributeError):
            supplied = None
        if expected is None or not token_matches(supplied if isinstance(supplied, str) else None, expected):
            raise ApiError(401, "Unauthorized", "that is not the API token", field="token")
        response = JSONResponse({"signed_in": True})
        response.set_cookie(
            SESSION_COOKIE,
            session_value(expected),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    return router
