"""The remote agents' one reply format, and the client that turns replies back into errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from temporalio.exceptions import ApplicationError

from sagaworks.activities.errors import ErrorClass
from sagaworks.activities.query.agents import DataAgent
from sagaworks.activities.query.dataset import SAMPLE_TABLES, DataSource
from sagaworks.activities.query.remote import AgentClient, agent_app
from sagaworks.contracts.query import AgentReply, DataInput, DataResult, QueryPlan


@pytest.fixture
def data_app(tmp_path: Path) -> FastAPI:
    agent = DataAgent(DataSource(f"sqlite:///{tmp_path / 'app.db'}", SAMPLE_TABLES, sample=True))
    return agent_app("data", agent.run)


def _client(app: FastAPI) -> AgentClient:
    client = AgentClient("data", "http://agent")
    # The app in-process: TestClient is an httpx.Client of its own (not a subclass the attribute declares).
    client._http = TestClient(app, base_url="http://agent")  # type: ignore[assignment]
    return client


def test_health_and_a_result_in_the_reply_format(data_app: FastAPI) -> None:
    http = TestClient(data_app)
    assert http.get("/health").json() == {"agent": "data", "status": "ok"}
    reply = http.post("/run", json={"plan": {"table": "cars", "sql": "SELECT COUNT(*) AS n FROM cars"}})
    parsed = AgentReply[DataResult].model_validate_json(reply.content)
    assert reply.status_code == 200 and parsed.ok and parsed.error is None
    assert parsed.result is not None and parsed.result.rows == [[406]]
    result = _client(data_app).call(
        DataInput(plan=QueryPlan(table="cars", sql="SELECT COUNT(*) AS n FROM cars")), DataResult
    )
    assert result.rows == [[406]] and result.produced_by == "data-agent"


def test_an_agent_error_comes_back_as_the_same_application_error(data_app: FastAPI) -> None:
    reply = TestClient(data_app).post("/run", json={"plan": {"table": "cars", "sql": "DROP TABLE cars"}})
    parsed = AgentReply[DataResult].model_validate_json(reply.content)
    assert reply.status_code == 422 and not parsed.ok and parsed.result is None
    assert parsed.error is not None and (parsed.error.type, parsed.error.retryable) == (ErrorClass.VALIDATION, False)
    with pytest.raises(ApplicationError) as refused:
        _client(data_app).call(DataInput(plan=QueryPlan(table="cars", sql="DROP TABLE cars")), DataResult)
    assert refused.value.type == ErrorClass.VALIDATION and refused.value.non_retryable
    assert "only SELECT is allowed, got DROP" in refused.value.message


def test_a_malformed_request_is_refused_in_the_reply_format(data_app: FastAPI) -> None:
    reply = TestClient(data_app).post("/run", json={"plan": {"table": 5}})
    parsed = AgentReply[DataResult].model_validate_json(reply.content)
    assert reply.status_code == 422 and parsed.error is not None and parsed.error.type == ErrorClass.VALIDATION


def test_a_reply_outside_the_format_is_a_retryable_external_error() -> None:
    app = FastAPI()

    @app.post("/run")
    def broken() -> dict[str, str]:
        return {"hello": "world"}

    with pytest.raises(ApplicationError) as failure:
        _client(app).call(DataInput(plan=QueryPlan(table="cars")), DataResult)
    assert failure.value.type == "ExternalError" and not failure.value.non_retryable
    assert "outside the agent reply format" in failure.value.message


def test_an_unreachable_agent_is_a_retryable_external_error() -> None:
    from tests.queries import dead_url

    client = AgentClient("viz", dead_url())
    with pytest.raises(ApplicationError) as down:
        client.health()
    assert down.value.type == "ExternalError" and not down.value.non_retryable and "is down" in down.value.message
