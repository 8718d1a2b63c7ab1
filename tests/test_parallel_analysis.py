"""The parallel-analysis family: four concurrent analyses, fallbacks, partial results."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from sagaworks.activities.db import Database
from sagaworks.activities.text_analysis import keywords_of, language_of, sentiment_of, summary_of
from sagaworks.contracts.parallel_analysis import ParallelAnalysisInput
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES
from sagaworks.workflows.parallel_analysis import ParallelAnalysisWorkflow
from tests.orders import wait_for_status

SAMPLE = json.loads((SAMPLES / "parallel-analysis/billing-retrospective.json").read_text())["text"]


async def _run(client: Client, task_queue: str, request: ParallelAnalysisInput):
    handle = await client.start_workflow(
        ParallelAnalysisWorkflow.run, request, id=f"pa-{uuid.uuid4()}", task_queue=task_queue
    )
    return handle, await asyncio.wait_for(handle.result(), 90)


async def test_all_four_analyses_run_at_once_and_combine(dev_client: Client, db: Database, task_queue: str) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        handle, result = await _run(dev_client, task_queue, ParallelAnalysisInput(text=SAMPLE))

    assert result.sentiment == sentiment_of(SAMPLE)
    assert result.keywords == keywords_of(SAMPLE)
    assert result.summary == summary_of(SAMPLE)
    assert result.language is not None and result.language.code == "en"
    assert (result.partial, result.unavailable, result.fallbacks) == (False, [], [])
    assert {p: o.status for p, o in result.parts.items()} == dict.fromkeys(
        ["sentiment", "keywords", "summary", "language"], "ok"
    )
    # Concurrent: the model's call and the language detection were scheduled in one workflow
    # task; with no model configured the other three analyses then all at once.
    events = (await handle.fetch_history()).events
    kinds = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        if e.HasField("activity_task_scheduled_event_attributes")
        else "completed"
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
        or e.HasField("activity_task_completed_event_attributes")
    ]
    assert kinds[:3] == ["ask_model_analyses", "detect_language", "completed"]
    assert kinds[3:6] == ["analyse_sentiment", "extract_keywords", "summarise_text"]


async def test_failed_branches_fall_back_or_are_not_available_and_the_rest_counts(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    request = ParallelAnalysisInput(text=SAMPLE, fail=["sentiment", "summary"])
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        _, result = await _run(dev_client, task_queue, request)

    assert result.sentiment is None
    assert result.parts["sentiment"].status == "unavailable"
    assert result.parts["sentiment"].error == "ProcessingError: sentiment analysis failed (injected)"
    assert result.summary is not None and result.summary.method == "lead"
    assert result.parts["summary"].status == "fallback" and result.parts["summary"].activity == "lead_summary"
    assert result.keywords == keywords_of(SAMPLE) and result.language == language_of(SAMPLE)
    assert (result.partial, result.unavailable, result.fallbacks) == (True, ["sentiment"], ["summary"])


async def test_a_fallback_runs_only_after_the_retry_policy_is_spent(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        handle, _ = await _run(dev_client, task_queue, ParallelAnalysisInput(text=SAMPLE, fail=["keywords"]))
    events = (await handle.fetch_history()).events
    failed = [
        e.activity_task_failed_event_attributes for e in events if e.HasField("activity_task_failed_event_attributes")
    ]
    [attempts] = {
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.HasField("activity_task_started_event_attributes") and e.activity_task_started_event_attributes.attempt > 1
    }
    assert len(failed) == 1 and attempts == 3  # TEXT_ANALYSIS allows three attempts


async def test_cancel_while_branches_run_ends_canceled_not_partial(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        handle = await dev_client.start_workflow(
            ParallelAnalysisWorkflow.run,
            ParallelAnalysisInput(text=SAMPLE, fail=["language"]),
            id=f"pa-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        # The injected failure keeps the language branch in its retries long enough to cancel.
        await wait_for_status(handle, lambda s: s.done == 3, query=ParallelAnalysisWorkflow.status, timeout=60)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


async def test_with_a_model_configured_it_analyses_and_a_refused_part_falls_back_offline_saying_why(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_chat_server import api_error, completion, fake_chat_server

    def respond(body, _index):
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("Judge the sentiment"):
            return 200, {}, completion('{"label": "positive", "score": 0.7}')
        if prompt.startswith("List the 8"):
            return 200, {}, completion('```json\n{"keywords": ["durable workflows", "billing job"]}\n```')
        return api_error(400, "summaries are switched off for this key")

    with fake_chat_server(respond) as server:
        for name in ("GROQ_API_KEY", "SAGAWORKS_LLM_PROVIDER", "SAGAWORKS_BREAKER_LLM"):
            monkeypatch.delenv(name, raising=False)
        # A model configured for this family only; the input asks for nothing.
        monkeypatch.setenv("SAGAWORKS_LLM_PARALLEL_ANALYSIS_BASE_URL", f"{server.base_url}/v1")
        monkeypatch.setenv("SAGAWORKS_LLM_PARALLEL_ANALYSIS_MODEL", "test-model")
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
            _, result = await _run(dev_client, task_queue, ParallelAnalysisInput(text=SAMPLE))

    assert result.sentiment is not None
    assert (result.sentiment.label, result.sentiment.compound, result.sentiment.method) == (
        "positive",
        0.7,
        "llm:test-model",
    )
    assert result.keywords is not None and result.keywords.keywords == ["durable workflows", "billing job"]
    assert result.parts["sentiment"].activity == result.parts["keywords"].activity == "ask_model_analyses"
    # The model refused the summary (HTTP 400, final): the offline TextRank summary stands in.
    assert result.parts["summary"].status == "fallback" and result.parts["summary"].activity == "summarise_text"
    assert "HTTP 400" in (result.parts["summary"].error or "")
    assert result.summary == summary_of(SAMPLE)
    assert result.language is not None and result.language.code == "en"
    assert (result.partial, result.fallbacks, result.unavailable) == (True, ["summary"], [])


async def test_a_pause_holds_the_branches_not_started_and_resume_runs_them(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        # Paused from its first workflow task on (signal-with-start): no branch may start.
        handle = await dev_client.start_workflow(
            ParallelAnalysisWorkflow.run,
            ParallelAnalysisInput(text=SAMPLE),
            id=f"pa-{uuid.uuid4()}",
            task_queue=task_queue,
            start_signal="pause",
        )
        await wait_for_status(handle, lambda s: s.state == "paused", query=ParallelAnalysisWorkflow.status, timeout=60)
        held = [
            e for e in (await handle.fetch_history()).events if e.HasField("activity_task_scheduled_event_attributes")
        ]
        await handle.signal(ParallelAnalysisWorkflow.resume)
        result = await asyncio.wait_for(handle.result(), 90)
    assert held == []
    assert result.language is not None and not result.partial


async def test_a_restart_from_a_branch_is_refused_since_it_would_reuse_nothing(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    from sagaworks.client.postmortem import RestartRefused, restart_run

    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        handle, _ = await _run(dev_client, task_queue, ParallelAnalysisInput(text=SAMPLE))
        refused = "a parallel-analysis run cannot restart from a step; families whose runs restart from a step: "
        with pytest.raises(RestartRefused, match=refused + ".*plan-analysis"):
            await restart_run(dev_client, handle.id, "keywords")


async def test_with_room_for_one_call_at_a_time_each_part_is_asked_of_the_model_once(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    """The model is asked its parts one after another in one activity; the gateway fails an
    attempt whose call does not fit its budget. Were each retry to ask again the parts an
    earlier attempt was answered, a budget with room for fewer calls than the parts at once
    (as when many runs share it) would never let an attempt through: the run would never end."""
    from sagaworks import LLM, LLMBudget
    from tests.fake_chat_server import completion, fake_chat_server, openai_settings

    answers = {
        "Judge the sentiment": '{"label": "positive", "score": 0.5}',
        "List the 8": '{"keywords": ["billing job"]}',
        "Summarise the text": '{"sentences": ["The billing job ran twice."]}',
    }

    def respond(body, _index):
        prompt = body["messages"][-1]["content"]
        return 200, {}, completion(next(a for start, a in answers.items() if prompt.startswith(start)))

    with fake_chat_server(respond) as server:
        # One request per 3 s: the second part's call never fits right after the first's (3 s, not
        # 1 s: a loaded machine's pause between two calls must not make room for the next).
        gateway = LLM(db, settings=openai_settings(server), budget=LLMBudget(requests=1, tokens=0, window_seconds=3))
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[gateway]):
            handle, result = await _run(dev_client, task_queue, ParallelAnalysisInput(text=SAMPLE))
        history = await handle.fetch_history()

    assert [server.prompt_of(n).split("\n")[0][:18] for n in range(len(server.requests))] == [
        "Judge the sentimen",
        "List the 8 most im",
        "Summarise the text",
    ]
    assert result.fallbacks == [] and not result.partial
    assert result.sentiment is not None and result.sentiment.method == "llm:test-model"
    assert result.keywords is not None and result.keywords.keywords == ["billing job"]
    assert result.summary is not None and result.summary.sentences == ["The billing job ran twice."]
    # The budget did make attempts fail and wait (else this proves nothing).
    started = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(started) > 1
