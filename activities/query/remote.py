"""Remote mode: each agent as a FastAPI app, and the httpx client the activities use.

    saga agent nlp --port 8001      (the integrator's CLI calls :func:`serve_agent`)

Every reply, success or failure, is an :class:`~contracts.query.AgentReply`: the client
validates it and turns an error reply back into the ``ApplicationError`` the agent raised
(same type, same retryability), so a remote agent fails exactly like a local one.
Transport faults (refused connection, timeout, 5xx without a valid reply) are retryable
``ExternalError``s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from sagaworks import ErrorClass, error
from sagaworks.contracts.query import (
    AgentError,
    AgentName,
    AgentReply,
    DataInput,
    DataResult,
    PlanInput,
    PlanResult,
    VizInput,
    VizResult,
)

ResultT = TypeVar("ResultT", bound=BaseModel)

ROUTES: dict[AgentName, tuple[str, type[BaseModel], type[BaseModel]]] = {
    "nlp": ("/plan", PlanInput, PlanResult),
    "data": ("/run", DataInput, DataResult),
    "viz": ("/render", VizInput, VizResult),
}
"""Each agent's one work route, its request and its result model."""


def _reply(
    agent: AgentName, started: float, result: BaseModel | None = None, err: BaseException | None = None
) -> dict[str, Any]:
    elapsed = (time.perf_counter() - started) * 1000
    if err is None:
        return AgentReply[Any](agent=agent, ok=True, result=result, elapsed_ms=elapsed).model_dump(mode="json")
    if isinstance(err, ApplicationError):
        failure = AgentError(
            type=err.type or ErrorClass.PROCESSING,
            message=err.message,
            retryable=not err.non_retryable,
            next_retry_seconds=err.next_retry_delay.total_seconds() if err.next_retry_delay else None,
        )
    else:
        failure = AgentError(type=ErrorClass.PROCESSING, message=f"{type(err).__name__}: {err}", retryable=True)
    return AgentReply[Any](agent=agent, ok=False, error=failure, elapsed_ms=elapsed).model_dump(mode="json")


def agent_app(name: AgentName, handler: Callable[[Any], BaseModel]) -> Any:
    """The FastAPI app of agent ``name``: ``GET /health`` and its work route."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    path, request_model, _ = ROUTES[name]
    app = FastAPI(title=f"sagaworks {name} agent")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"agent": name, "status": "ok"}

    # A plain sync handler: FastAPI runs it in its thread pool.
    @app.post(path)
    def work(body: dict[str, Any]) -> JSONResponse:
        started = time.perf_counter()
        try:
            request = request_model.model_validate(body)
        except ValidationError as invalid:
            bad = error(
                ErrorClass.VALIDATION,
                f"request does not match {request_model.__name__}: {invalid.errors()[:3]}",
                non_retryable=True,
            )
            return JSONResponse(_reply(name, started, err=bad), status_code=422)
        try:
            result = handler(request)
        except Exception as err:  # noqa: BLE001 - every failure goes back in the reply format
            status = 500 if not isinstance(err, ApplicationError) or not err.non_retryable else 422
            return JSONResponse(_reply(name, started, err=err), status_code=status)
        return JSONResponse(_reply(name, started, result=result))

    return app


def build_handler(name: AgentName) -> Callable[[Any], BaseModel]:
    """The local agent behind a remote one, configured from the environment."""
    from sagaworks import database_url
    from sagaworks.activities.query.agents import DataAgent, nlp_agent, planner_from_env, viz_agent
    from sagaworks.activities.query.dataset import data_source_from_env

    if name == "viz":
        return viz_agent
    data = DataAgent(data_source_from_env(database_url()))
    if name == "data":
        return data.run
    planner = planner_from_env()
    return lambda request: nlp_agent(planner, data, request)


def serve_agent(name: str, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Serve agent ``name`` (nlp, data or viz) until interrupted; ``GET /health`` answers
    ``{"agent": name, "status": "ok"}``. Data comes from ``DATABASE_URL`` (or
    ``QUERY_DATABASE_URL`` + ``QUERY_TABLES``), the NLP provider from the LLM variables."""
    import uvicorn

    if name not in ROUTES:
        raise SystemExit(f"no agent {name!r}: use nlp, data or viz")
    agent: AgentName = name
    if agent == "viz":  # requests run in threads: none may see pandas half-imported by another
        from sagaworks.activities.processes import RENDER_MODULES, import_now

        import_now(RENDER_MODULES)
    uvicorn.run(agent_app(agent, build_handler(agent)), host=host, port=port, log_level="warning")


class AgentClient:
    """Calls one remote agent."""

    def __init__(self, name: AgentName, base_url: str, timeout: float = 30) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def health(self) -> None:
        """Return if the agent answers ``/health``; raise a retryable ``ExternalError`` if not."""
        try:
            response = self._http.get("/health", timeout=3)
            response.raise_for_status()
            if response.json().get("status") != "ok":
                raise ValueError(f"unexpected health reply {response.text[:200]}")
        except (httpx.HTTPError, ValueError) as err:
            raise error(ErrorClass.EXTERNAL, f"{self.name} agent at {self.base_url} is down: {err}") from None

    def call(self, request: BaseModel, result_type: type[ResultT]) -> ResultT:
        path = ROUTES[self.name][0]
        try:
            response = self._http.post(path, json=request.model_dump(mode="json"))
        except httpx.HTTPError as err:
            raise error(
                ErrorClass.EXTERNAL, f"{self.name} agent at {self.base_url}: {type(err).__name__}: {err}"
            ) from None
        try:
            reply = AgentReply[result_type].model_validate_json(response.content)  # type: ignore[valid-type]
        except ValidationError:
            raise error(
                ErrorClass.EXTERNAL,
                f"{self.name} agent replied HTTP {response.status_code} outside the agent reply format: "
                f"{response.text[:200]}",
            ) from None
        if reply.ok and reply.result is not None:
            return reply.result
        failure = reply.error or AgentError(type=ErrorClass.EXTERNAL, message="empty reply", retryable=True)
        delay = timedelta(seconds=failure.next_retry_seconds) if failure.next_retry_seconds else None
        raise ApplicationError(
            f"{self.name} agent: {failure.message}",
            type=failure.type,
            non_retryable=not failure.retryable,
            next_retry_delay=delay,
        )

    def close(self) -> None:
        self._http.close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Serve one query agent over HTTP.")
    parser.add_argument("agent", choices=sorted(ROUTES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve_agent(args.agent, args.host, args.port)
