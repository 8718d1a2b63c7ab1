"""Every error the API returns is ``{"error": {"type", "message", "field"?}}``, never a trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from sagaworks import RunRefused
from sagaworks.client.runs import RunAlreadyClosed, RunConflict

log = logging.getLogger("sagaworks.api")


class ErrorDetail(BaseModel):
    type: str
    """A stable name: ValidationError, NotFound, RunConflict, Unauthorized..."""
    message: str
    field: str | None = None
    """The input field at fault (dotted path, e.g. ``items.0.quantity``), when there is one."""


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    error: ErrorDetail


class ApiError(Exception):
    """An error with its HTTP status; raised by routes, rendered by :func:`install`."""

    def __init__(
        self, status: int, type: str, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.field, self.headers = status, type, message, field, headers


def error_response(
    http_status: int,
    type: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    detail = ErrorDetail(type=type, message=message, field=field).model_dump(exclude_none=True)
    return JSONResponse({"error": detail, **extra}, status_code=http_status, headers=headers)


_LOCATIONS = ("body", "query", "path", "header", "cookie")
"""Where FastAPI found a parameter: the first part of a request error's ``loc``."""


def _field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """The dotted field of an error's ``loc``: without its location, and only that (a
    field may be named ``query`` or ``path``); ``body`` when the body itself is at fault
    (a JSON string where one is the whole body)."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(str(part) for part in parts) or None


def validation_response(errors: list[Any]) -> JSONResponse:
    """422 naming the first field at fault (the others are listed under ``errors``)."""
    first = errors[0]
    field = _field(first.get("loc", ()))
    message = f"{field}: {first['msg']}" if field else first["msg"]
    others = [{"field": _field(e.get("loc", ())), "message": e["msg"]} for e in errors]
    return error_response(422, "InvalidRequest", message, field=field, errors=others)


def allowed_methods(request: Request) -> list[str]:
    """The methods ``/openapi.json`` documents for the resource a request's path names (the
    ``Allow`` header of a 405): those of the first path template it matches, in the
    document's order (``/api/workflows/order`` before ``/api/workflows/{workflow_id}``)."""
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(request.url.path):
            return sorted(method.upper() for method in operations)
    return []


_RPC_STATUS = {
    RPCStatusCode.NOT_FOUND: (404, "NotFound"),
    RPCStatusCode.INVALID_ARGUMENT: (400, "InvalidArgument"),
    RPCStatusCode.ALREADY_EXISTS: (409, "RunConflict"),
    RPCStatusCode.FAILED_PRECONDITION: (409, "FailedPrecondition"),
    RPCStatusCode.UNAVAILABLE: (503, "TemporalUnavailable"),
    RPCStatusCode.DEADLINE_EXCEEDED: (504, "TemporalTimeout"),
}


def install(app: FastAPI) -> None:
    """Render every exception as the API's error body."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.type, error.message, field=error.field, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return validation_response(list(error.errors()))

    @app.exception_handler(ValidationError)
    async def _model_invalid(_: Request, error: ValidationError) -> JSONResponse:
        return validation_response(list(error.errors()))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
            # FastAPI's answer to a body that is not UTF-8: bad input like any other, so 422.
            return error_response(422, "InvalidRequest", "the request body is not UTF-8 JSON", field="body")
        names = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}
        headers = dict(error.headers or {})
        documented = allowed_methods(request) if error.status_code == 405 else []
        if documented:
            # Starlette's names the methods of the first route matched, not of the resource.
            headers["Allow"] = ", ".join(documented)
        return error_response(
            error.status_code,
            names.get(error.status_code, "RequestRefused"),
            str(error.detail),
            headers=headers or None,
        )

    @app.exception_handler(RunConflict)
    async def _conflict(_: Request, error: RunConflict) -> JSONResponse:
        return error_response(409, "RunConflict", str(error))

    @app.exception_handler(RunRefused)
    async def _refused(_: Request, error: RunRefused) -> JSONResponse:
        return error_response(403, "RunRefused", str(error))

    @app.exception_handler(RunAlreadyClosed)
    async def _closed(_: Request, error: RunAlreadyClosed) -> JSONResponse:
        return error_response(409, "RunAlreadyClosed", str(error), status=error.status)

    @app.exception_handler(WorkflowUpdateFailedError)
    async def _update_failed(_: Request, error: WorkflowUpdateFailedError) -> JSONResponse:
        cause = error.cause
        return error_response(409, "UpdateFailed", getattr(cause, "message", None) or str(cause))

    @app.exception_handler(RPCError)
    async def _rpc(_: Request, error: RPCError) -> JSONResponse:
        status, name = _RPC_STATUS.get(error.status, (502, "TemporalRequestFailed"))
        return error_response(status, name, error.message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "UnexpectedApiFailure", "internal error; the API's log has the details")
