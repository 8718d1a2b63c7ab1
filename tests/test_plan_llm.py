"""The semantic stage's LLM pass, with the real ChatGroq client against the local
chat-completions server: a valid answer merged (confirmed, added, filled; what is not in
the plan refused), invalid JSON retried then the offline extraction kept, offline by default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from sagaworks.activities.db import Database
from sagaworks.activities.plan_analysis.store import OutputStore
from sagaworks.contracts.plans import PlanResult
from sagaworks.policies import llm_task_queue
from tests.fake_chat_server import FakeChatServer, Reply, completion, fake_chat_server
from tests.plans import SEMANTIC_ANSWER, llm_plan_settings, make_plan, plan_settings, plan_worker, start_plan

MODEL = "groq:test-model"


@pytest.fixture
def chat(request: pytest.FixtureRequest) -> Iterator[FakeChatServer]:
    replies: list[Reply] = request.param
    with fake_chat_server(lambda _body, index: replies[min(index, len(replies) - 1)]) as server:
        yield server


async def _analyse(
    client: Client, db: Database, task_queue: str, chat: FakeChatServer | None
) -> tuple[WorkflowHandle[Any, PlanResult], PlanResult]:
    settings = plan_settings() if chat is None else llm_plan_settings(chat.base_url)
    async with plan_worker(client, db, task_queue, settings):
        handle = await start_plan(client, task_queue, make_plan("plan-bueno"))
        return handle, await handle.result()


async def _semantic_activities(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str]]:
    """(summary, task queue) of every semantic stage activity the run scheduled."""
    found = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            summary = json.loads(event.user_metadata.summary.data) if event.HasField("user_metadata") else ""
            if summary.startswith("semantic"):
                found.append((summary, event.activity_task_scheduled_event_attributes.task_queue.name))
    return found


@pytest.mark.parametrize("chat", [[(200, {}, completion(json.dumps(SEMANTIC_ANSWER)))]], indirect=True)
async def test_the_llm_pass_is_merged_into_the_offline_extraction(
    dev_client: Client, db: Database, task_queue: str, chat: FakeChatServer
) -> None:
    handle, result = await _analyse(dev_client, db, task_queue, chat)
    # The LLM pass is the semantic step again (the outcome a restart reuses), on the LLM queue.
    assert await _semantic_activities(handle) == [("semantic", task_queue), ("semantic", llm_task_queue(task_queue))]
    [semantic] = [s for s in result.stages if s.stage == "semantic"]
    assert semantic.options.llm == MODEL
    assert "2 confirmed, 1 added, 1 filled, 3 rejected by groq:test-model" in semantic.summary
    output = OutputStore(db).require(semantic.output_key, "semantic")["result"]
    assert output["llm"] == {"model": MODEL, "confirmed": 2, "added": 1, "filled": 1, "rejected": 3}
    [goal] = [g for g in output["goals"] if g.get("confirmed_by") == MODEL]
    assert goal["text"].startswith("Aumentar la cobertura") and goal["confidence"] == 0.9
    assert not any("pobreza" in g["text"] for g in output["goals"])
    [confirmed] = [p for p in output["programmes"] if p.get("confirmed_by") == MODEL]
    assert confirmed["code"] == "1.1" and confirmed["indicator"] == "Tasa de deserción escolar rural"
    [added] = [p for p in output["programmes"] if p.get("source") == MODEL]
    assert added["name"] == "programa de alimentación" and added["goal_id"] == goal["id"]
    assert added["responsible"] == "Secretaría de Educación" and added["filled_by"] == ["responsible"]
    assert added["indicator"] is None and "programa de alimentación" in added["text"]
    assert not any("cohetes" in p["name"] for p in output["programmes"])
    assert semantic.metrics["programmes"] == len(output["programmes"])
    # The later stages read the merged output: the added programme lacks DNP fields.
    [dnp] = [s for s in result.stages if s.stage == "dnp"]
    assert dnp.metrics["incomplete_programmes"] == 1
    assert "Programa 1.1: Aulas rurales dignas" in chat.prompt_of(0)
    assert chat.requests[0][1]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("chat", [[(200, {}, completion("Los programas son: aulas, acueductos."))]], indirect=True)
async def test_an_unusable_llm_answer_leaves_the_offline_extraction_at_once(
    dev_client: Client, db: Database, task_queue: str, chat: FakeChatServer
) -> None:
    _handle, result = await _analyse(dev_client, db, task_queue, chat)
    assert len(chat.requests) == 1  # the offline extraction is the declared fallback: not asked again
    [semantic] = [s for s in result.stages if s.stage == "semantic"]
    assert semantic.options.llm is None and "by groq" not in semantic.summary
    assert semantic.fallback and semantic.fallback.startswith(f"{MODEL}'s answer is unusable")
    [alert] = [a for a in result.alerts if a.stage == "semantic"]
    assert alert.level == "WARNING" and alert.risk_id is None
    assert alert.message.startswith(f"LLM pass by {MODEL} failed (ModelError: {MODEL}'s answer is unusable")
    assert alert.message.endswith("the offline extraction stands")
    assert result.score > 90  # the offline analysis of the good plan, untouched


async def test_offline_by_default_no_llm_pass(dev_client: Client, db: Database, task_queue: str) -> None:
    handle, result = await _analyse(dev_client, db, task_queue, None)
    assert await _semantic_activities(handle) == [("semantic", task_queue)]
    assert all(s.options.llm is None for s in result.stages) and not result.alerts
