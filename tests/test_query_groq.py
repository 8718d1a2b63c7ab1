"""The LLM gateway's Groq model as the NLP provider, against the local chat-completions
server, through Temporal: a valid plan, an unusable answer (the offline parser, its
declared fallback, plans at once), a 429 with Retry-After."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import pytest
from temporalio.client import Client

from sagaworks import LLM, LLMBudget, LLMSettings
from sagaworks.activities.db import Database
from sagaworks.activities.query.activities import QuerySettings
from sagaworks.activities.query.agents import LLMPlanner
from sagaworks.contracts.query import QueryResult
from sagaworks.worker import running_worker
from tests.fake_chat_server import FakeChatServer, Reply, api_error, completion, fake_chat_server
from tests.queries import start_query

PLAN = {
    "table": "cars",
    "measures": [{"column": "horsepower", "aggregation": "avg"}],
    "dimensions": [{"column": "origin"}],
    "order_by": [{"by": "origin"}],
}
HOSTILE = {"table": "cars", "sql": "SELECT name FROM cars; DROP TABLE cars"}


def _plan_reply(plan: Mapping[str, object]) -> Reply:
    return 200, {}, completion(json.dumps(plan))


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeChatServer]:
    replies: list[Reply] = request.param
    with fake_chat_server(lambda _body, index: replies[min(index, len(replies) - 1)]) as running:
        yield running


async def _ask(dev_client: Client, db: Database, task_queue: str, server: FakeChatServer, question: str) -> QueryResult:
    model = LLMSettings("groq", "test-model", server.base_url, "test-key")
    planner = LLMPlanner(LLM(db, settings=model, budget=LLMBudget(requests=0, tokens=0)))
    async with running_worker(
        dev_client, db, task_queue=task_queue, activity_threads=4, settings=[QuerySettings(planner=planner)]
    ):
        return await (await start_query(dev_client, task_queue, question)).result()


@pytest.mark.parametrize("server", [[_plan_reply(PLAN)]], indirect=True)
async def test_valid_structured_plan(dev_client: Client, db: Database, task_queue: str, server: FakeChatServer) -> None:
    result = await _ask(dev_client, db, task_queue, server, "how strong are cars from each region")
    assert result.produced_by["plan"] == "nlp-agent:groq:test-model" and result.fallbacks == []
    assert result.columns == ["origin", "avg_horsepower"] and [r[0] for r in result.rows] == ["Europe", "Japan", "USA"]
    assert result.chart.kind == "bar"
    request = server.requests[0][1]
    assert request["response_format"] == {"type": "json_object"}
    assert "how strong are cars from each region" in server.prompt_of(
        0
    ) and "miles_per_gallon: number" in server.prompt_of(0)


@pytest.mark.parametrize(
    "server", [[(200, {}, completion("Sure! The answer is the average horsepower."))]], indirect=True
)
async def test_an_unusable_answer_makes_the_offline_parser_plan_at_once(
    dev_client: Client, db: Database, task_queue: str, server: FakeChatServer
) -> None:
    result = await _ask(dev_client, db, task_queue, server, "average horsepower by origin")
    assert len(server.requests) == 1  # the parser is the declared answer to an unusable one
    assert result.produced_by["plan"] == "fallback:offline-parser"
    [note] = result.fallbacks
    assert note.startswith("nlp: groq:test-model's answer is unusable") and note.endswith("-> offline parser")


@pytest.mark.parametrize(
    "server", [[api_error(429, "slow down", {"retry-after": "3"}), _plan_reply(PLAN)]], indirect=True
)
async def test_429_waits_for_retry_after(
    dev_client: Client, db: Database, task_queue: str, server: FakeChatServer
) -> None:
    result = await _ask(dev_client, db, task_queue, server, "average horsepower by origin")
    assert result.produced_by["plan"] == "nlp-agent:groq:test-model" and len(server.requests) == 2
    waited = server.requests[1][0] - server.requests[0][0]
    # The policy's first interval is 1 s (jittered to 0.5-1 s): 3 s means Retry-After won.
    assert 2.9 <= waited < 10, waited


@pytest.mark.parametrize("server", [[_plan_reply(HOSTILE)]], indirect=True)
async def test_hostile_llm_sql_fails_the_run_and_changes_nothing(
    dev_client: Client, db: Database, task_queue: str, server: FakeChatServer
) -> None:
    from temporalio.client import WorkflowFailureError

    from tests.queries import failure_chain

    with pytest.raises(WorkflowFailureError) as failure:
        await _ask(dev_client, db, task_queue, server, "list the cars")
    messages = [getattr(e, "message", "") for e in failure_chain(failure.value)]
    assert any("plan.sql: SQL refused: exactly one statement is allowed, got 2" in m for m in messages), messages
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM cars").scalar_one() == 406
