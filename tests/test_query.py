"""The query workflow end to end on the dev server, agents in the worker process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from sagaworks import LLM, LLMBudget, LLMSettings, registry
from sagaworks._breakers import BreakerConfig, Breakers
from sagaworks.activities.db import Database
from sagaworks.activities.errors import ErrorClass, error
from sagaworks.activities.query.activities import QuerySettings, jittered_delay
from sagaworks.activities.query.agents import LLMPlanner
from sagaworks.contracts.query import QueryStatus
from sagaworks.worker import running_worker
from tests.queries import dead_url, failure_chain, start_query, wait_for_status


@pytest_asyncio.fixture
async def local_worker(dev_client: Client, db: Database, task_queue: str) -> AsyncIterator[None]:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[QuerySettings()]):
        yield


async def test_question_to_chart(dev_client: Client, task_queue: str, local_worker: None) -> None:
    handle = await start_query(dev_client, task_queue, "average temperature by month in 2014")
    result = await handle.result()
    assert result.columns == ["month", "avg_temp_max"] and [r[0] for r in result.rows] == list(range(1, 13))
    assert "STRFTIME('%Y', date) AS INTEGER) = 2014" in result.sql
    assert result.chart.kind == "line" and result.chart.svg and result.chart.svg.startswith("<svg")
    assert result.chart.vega_lite and result.chart.vega_lite["mark"]["type"] == "line"
    assert result.produced_by == {"plan": "nlp-agent:offline-parser", "rows": "data-agent", "chart": "viz-agent"}
    assert result.fallbacks == []
    status = await handle.query("status", result_type=QueryStatus)
    assert (status.state, status.completed_steps, status.failed_steps) == (
        "completed",
        ["health", "nlp", "data", "viz"],
        [],
    )


async def test_rows_are_capped_and_the_cut_is_reported(dev_client: Client, task_queue: str, local_worker: None) -> None:
    handle = await start_query(dev_client, task_queue, "horsepower and weight of cars", max_rows=10)
    result = await handle.result()
    assert len(result.rows) == 10 and result.row_count == 406 and result.truncated
    assert result.chart.kind == "scatter"


async def test_unanswerable_question_fails_clearly_without_fallback(
    dev_client: Client, task_queue: str, local_worker: None
) -> None:
    handle = await start_query(dev_client, task_queue, "what is the airspeed velocity of an unladen swallow")
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    [cause] = [e for e in failure_chain(failure.value) if isinstance(e, ApplicationError)]
    assert (
        cause.type == ErrorClass.VALIDATION
        and "could not understand: 'airspeed velocity unladen swallow'" in cause.message
    )
    status = await handle.query("status", result_type=QueryStatus)
    assert status.state == "failed" and status.failed_steps == ["nlp"] and status.fallbacks == []


async def test_viz_agent_down_degrades_to_a_table(dev_client: Client, db: Database, task_queue: str) -> None:
    settings = QuerySettings(agent_urls={"viz": dead_url()})
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
        result = await (await start_query(dev_client, task_queue, "average mpg by origin")).result()
    assert result.chart.kind == "table" and result.chart.svg is None
    assert result.produced_by["chart"] == "fallback:table" and len(result.rows) == 3
    assert len(result.fallbacks) == 1 and result.fallbacks[0].startswith("viz: down at pre-flight")


async def test_nlp_agent_down_falls_back_to_the_offline_parser(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    settings = QuerySettings(agent_urls={"nlp": dead_url()})
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
        result = await (await start_query(dev_client, task_queue, "number of cars by origin")).result()
    assert result.produced_by["plan"] == "fallback:offline-parser" and result.chart.kind == "bar"
    assert result.fallbacks[0].startswith("nlp: down at pre-flight")


async def test_data_agent_down_fails_at_once(dev_client: Client, db: Database, task_queue: str) -> None:
    settings = QuerySettings(agent_urls={"data": dead_url()})
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
        handle = await start_query(dev_client, task_queue, "number of cars by origin")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        status = await handle.query("status", result_type=QueryStatus)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "AgentUnavailable"
    assert "data agent is unavailable and has no fallback" in cause.message
    assert status.completed_steps == ["health"] and status.failed_steps == ["health"]


async def test_open_llm_breaker_uses_the_offline_parser(dev_client: Client, db: Database, task_queue: str) -> None:
    """The gateway's ``llm`` breaker is open: the pre-flight check sees it, the model is not
    called, the offline parser plans and the result says why."""
    breakers = Breakers(db, {"llm": BreakerConfig(1, 600)})
    with pytest.raises(ApplicationError):
        breakers.call("llm", lambda: (_ for _ in ()).throw(error(ErrorClass.MODEL, "Groq unreachable")))
    assert breakers.status("llm").state == "open"
    unreachable = LLMSettings("openai", "test-model", "http://127.0.0.1:9/v1")  # nothing listens: never asked
    llm = LLM(db, settings=unreachable, budget=LLMBudget(requests=0, tokens=0), breakers=breakers)
    settings = QuerySettings(planner=LLMPlanner(llm))
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
        result = await (await start_query(dev_client, task_queue, "average price by symbol")).result()
    assert result.produced_by["plan"] == "fallback:offline-parser"
    assert any("breaker llm" in f for f in result.fallbacks), result.fallbacks


async def test_pause_resume_and_cancel_between_agents(dev_client: Client, task_queue: str, local_worker: None) -> None:
    handle = await start_query(dev_client, task_queue, "average price by symbol", pause_between_agents_seconds=0.2)
    await handle.signal("pause")
    status = await wait_for_status(handle, lambda s: s.state == "paused")
    await handle.signal("resume")
    assert (await handle.result()).chart.kind == "bar"

    handle = await start_query(dev_client, task_queue, "average price by symbol", pause_between_agents_seconds=0.2)
    await handle.signal("pause")
    status = await wait_for_status(handle, lambda s: s.state == "paused" and "health" in s.completed_steps)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    status = await handle.query("status", result_type=QueryStatus)
    assert status.state == "canceled" and "data" not in status.completed_steps


def test_the_catalog_serves_the_family_with_its_samples() -> None:
    query = registry().family("query")
    assert query.workflow_type == "QueryWorkflow"
    for path in query.sample_paths():
        sample = query.parse(path.read_text())
        assert query.workflow_id(sample).startswith("query-")
    # One run of a question at a time (ALLOW_DUPLICATE: asked again once it closed); a
    # request id names its own run.
    same = query.workflow_id(query.parse({"question": "x y z"}))
    assert (
        same
        == query.workflow_id(query.parse({"question": "x y z"}))
        != query.workflow_id(query.parse({"question": "x y"}))
    )
    assert query.workflow_id(query.parse({"question": "x y z", "request_id": "r-1"})) == "query-r-1"


def test_jitter_stays_within_half_and_full_backoff() -> None:
    import random

    rng = random.Random(7)
    delays = [jittered_delay(3, 1, 2, 30, rng) for _ in range(200)]
    assert all(2 <= d <= 4 for d in delays) and len({round(d, 3) for d in delays}) > 100
    assert all(15 <= jittered_delay(10, 1, 2, 30, rng) <= 30 for _ in range(50))


def test_recorded_query_histories_cover_completed_degraded_and_cancelled() -> None:
    """tests/test_replay.py replays every file of tests/histories/, these included."""
    import base64
    import json
    from pathlib import Path

    folder = Path(__file__).parent / "histories"
    endings = {}
    for name in ("query_completed", "query_degraded", "query_cancelled"):
        events = json.loads((folder / f"{name}.json").read_text())["events"]
        endings[name] = events[-1]["eventType"]
        if name == "query_degraded":
            [done] = [e for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"]
            payload = done["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]["data"]
            assert json.loads(base64.b64decode(payload))["produced_by"]["chart"] == "fallback:table"
    assert endings == {
        "query_completed": "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
        "query_degraded": "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
        "query_cancelled": "EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED",
    }


async def test_metrics_come_from_the_histories(dev_client: Client, db: Database, task_queue: str) -> None:
    from sagaworks.client.query_metrics import query_metrics

    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[QuerySettings()]):
        ids = []
        for question in ("average price by symbol", "no such thing at all"):
            handle = await start_query(dev_client, task_queue, question)
            ids.append(handle.id)
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
    # Visibility is eventually consistent: wait until both runs are listed.
    deadline = time.monotonic() + 30
    while True:
        listed = {
            w.id
            async for w in dev_client.list_workflows(f"WorkflowType = 'QueryWorkflow' AND TaskQueue = '{task_queue}'")
        }
        if set(ids) <= listed or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    metrics = await query_metrics(dev_client)
    steps = {s.step: s for s in metrics.steps}
    assert metrics.runs >= 2 and metrics.by_status.get("COMPLETED", 0) >= 1 and metrics.by_status.get("FAILED", 0) >= 1
    assert steps["nlp"].success_rate < 1 and steps["data"].succeeded >= 1 and steps["nlp"].attempts.get("1", 0) >= 2
    assert steps["viz"].p50_ms is not None


async def test_open_data_breaker_delays_the_retry_to_its_trial_which_closes_it(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fallback for data: the open breaker costs one fast attempt, the next is the trial."""
    import base64
    import json

    monkeypatch.setenv("SAGAWORKS_BREAKER_DATA", "1/8")
    breakers = Breakers(db)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[QuerySettings()]):
        with pytest.raises(ApplicationError):
            breakers.call("data", lambda: (_ for _ in ()).throw(error(ErrorClass.DATABASE, "down")), fallback=False)
        assert breakers.status("data").state == "open"
        handle = await start_query(dev_client, task_queue, "number of cars by origin")
        result = await handle.result()
    assert result.rows == [["Europe", 73], ["Japan", 79], ["USA", 254]]
    assert breakers.status("data").state == "closed"
    attempts = [
        json.loads(base64.b64decode(e["markerRecordedEventAttributes"]["details"]["data"]["payloads"][0]["data"]))
        for e in json.loads((await handle.fetch_history()).to_json())["events"]
        if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
    ]
    assert [(a["activity_type"], a["attempt"]) for a in attempts if a["activity_type"] == "query_run"] == [
        ("query_run", 2)
    ]
