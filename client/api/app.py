"""The FastAPI application: the API under ``/api``, the console at ``/``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from sagaworks.client.api import console, errors, routes_ops, routes_runs, routes_schedules
from sagaworks.client.api.cache import ShortCache
from sagaworks.client.api.console import HERE
from sagaworks.client.api.security import BodyLimit, require_token
from sagaworks.client.api.settings import ApiSettings
from sagaworks.client.connection import connect

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def _host_name(host: str) -> str:
    """The name of a Host header, without its port (``[::1]:8000`` -> ``[::1]``)."""
    return host.split("]")[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]


class LocalCallersOnly:
    """ASGI middleware for the token-less API: loopback Host names, JSON or bodiless POSTs
    marked as not from a form (``Content-Type: application/json`` or ``X-Requested-With``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            if _host_name(headers.get("host", "")) not in LOOPBACK_HOSTS:
                await errors.error_response(
                    421, "HostNotAllowed", f"this API answers only {', '.join(LOOPBACK_HOSTS)} without a token"
                )(scope, receive, send)
                return
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if scope["method"] == "POST" and content_type != "application/json" and "x-requested-with" not in headers:
                await errors.error_response(
                    415,
                    "JsonRequired",
                    "without a token, POSTs must send Content-Type: application/json (or X-Requested-With)",
                    field="Content-Type",
                )(scope, receive, send)
                return
        await self.app(scope, receive, send)


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Console pages load only this server's script and styles and images from it or carried
inline as ``data:`` URIs: a result cannot make the browser fetch or run anything else."""


class SecurityHeaders:
    """ASGI middleware adding :data:`CONTENT_SECURITY_POLICY` (and ``nosniff``) to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                headers.setdefault("X-Content-Type-Options", "nosniff")
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def create_app(settings: ApiSettings | None = None, *, client: Client | None = None) -> FastAPI:
    """The API and console; connects to Temporal on start unless given a ``client``.

    Tests pass their own client (the dev server's) and settings (token, task queue, cap).
    """
    settings = settings or ApiSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.client = client or await connect(address=settings.address)
        yield
        if app.state.database is not None:
            app.state.database.dispose()

    app = FastAPI(
        title="sagaworks",
        version="0.1.0",
        description="Start, follow and control every workflow family of the sagaworks catalog. "
        "Send `Authorization: Bearer $SAGAWORKS_API_TOKEN` when the server has a token.",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN; nothing here does.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = None
    app.state.metrics_cache = ShortCache(settings.metrics_cache_seconds)
    errors.install(app)
    console.install_login_redirect(app)

    auth = [Depends(require_token)]
    runs_router = routes_runs.build_router()
    app.include_router(runs_router, dependencies=auth)
    app.include_router(routes_ops.build_alias_router(runs_router), dependencies=auth)
    app.include_router(routes_ops.build_router(), dependencies=auth)
    app.include_router(routes_schedules.build_router(), dependencies=auth)
    # /api/health answers without the token: load balancers and compose health checks probe it.
    app.include_router(routes_ops.build_health_router())
    app.include_router(console.build_router())
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    if settings.token is None:
        # Without a token the API listens on loopback only, and so any page a local browser
        # opens could reach it: refuse other Host names (DNS rebinding) and POSTs a
        # cross-site form can send (a page cannot send JSON cross-site without CORS).
        app.add_middleware(LocalCallersOnly)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
