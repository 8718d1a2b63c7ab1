"""Bearer-token authentication and the request-body cap."""

from __future__ import annotations

import hmac
import json

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from client.api.errors import ApiError

SESSION_COOKIE = "sagaworks_token"
"""The console's browser session: the token, set by ``POST /login`` (HttpOnly, SameSite=Strict),
because EventSource and plain links cannot send an Authorization header."""

_bearer = HTTPBearer(auto_error=False, description="SAGAWORKS_API_TOKEN")


def supplied_token(request: Request) -> str | None:
    """The bearer token of the Authorization header, else the console's session cookie."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials if scheme.lower() == "bearer" and credentials else request.cookies.get(SESSION_COOKIE)


def token_matches(supplied: str | None, expected: str) -> bool:
    """Constant-time comparison, so response times do not leak how much of a guess was right."""
    return hmac.compare_digest((supplied or "").encode(), expected.encode())


async def require_token(request: Request, _: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Refuse the request with 401 unless it carries the configured token (if any).

    (``_bearer`` only declares the scheme in ``/openapi.json``.)"""
    expected: str | None = request.app.state.settings.token
    if expected is not None and not token_matches(supplied_token(request), expected):
        raise ApiError(
            401, "Unauthorized", "a valid bearer token is required (Authorization: Bearer $SAGAWORKS_API_TOKEN)",
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
        await send({
            "type": "http.response.start", "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
