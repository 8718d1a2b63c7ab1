"""Bearer-token authentication and the request-body cap."""

from __future__ import annotations

import hashlib
import hmac
import json

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sagaworks.client.api.errors import ApiError

SESSION_COOKIE = "sagaworks_session"
"""The console's browser session, set by ``POST /login`` (HttpOnly, SameSite=Strict), because
EventSource and plain links cannot send an Authorization header. It holds
:func:`session_value`, never the token itself: a cookie that leaks (a browser profile, a
proxy's log) does not hand out the token the CLI and scripts use."""

_SESSION_CONTEXT = b"sagaworks console session v1"

_bearer = HTTPBearer(auto_error=False, description="SAGAWORKS_API_TOKEN")


def session_value(token: str) -> str:
    """The session cookie's value for ``token``: an HMAC-SHA256 keyed by it (it changes
    when the token does, so rotating the token signs every browser out)."""
    return hmac.new(token.encode(), _SESSION_CONTEXT, hashlib.sha256).hexdigest()


def token_matches(supplied: str | None, expected: str) -> bool:
    """Constant-time comparison, so response times do not leak how much of a guess was right."""
    return hmac.compare_digest((supplied or "").encode(), expected.encode())


def authorized(request: Request, token: str) -> bool:
    """The request carries ``Authorization: Bearer <token>``, or else the session cookie."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return token_matches(credentials, token)
    return token_matches(request.cookies.get(SESSION_COOKIE), session_value(token))


async def require_token(request: Request, _: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Refuse the request with 401 unless it carries the configured token (if any).

    (``_bearer`` only declares the scheme in ``/openapi.json``.)"""
    expected: str | None = request.app.state.settings.token
    if expected is not None and not authorized(request, expected):
        raise ApiError(
            401,
            "Unauthorized",
            "a valid bearer token is required (Authorization: Bearer $SAGAWORKS_API_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )


class _TooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parsing passes it on (it turns other errors into 400)
    # and the error handlers render it as 413.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over {max_bytes} bytes")


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, declared or streamed, before any
    route reads it (a missing or lying Content-Length does not get around it)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = _TooLarge(self.max_bytes).detail
        body = json.dumps({"error": {"type": "PayloadTooLarge", "message": message}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
