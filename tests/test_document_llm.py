"""The document family's concept extraction through the LLM gateway: the configured model
answers (an OpenAI-compatible one, and Groq's through ChatGroq, against a local
chat-completions server), rate limits are waited out, and when the model cannot answer
(the gateway's breaker open, a refusal, an unusable answer) the offline extractor does,
and the result and the extraction's summary say why."""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from sagaworks import LLM, BreakerConfig, Breakers, LLMBudget, LLMSettings
from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.client.trace import trace_run
from sagaworks.contracts.document import DocumentResult
from sagaworks.worker import running_worker
from tests.documents import SAMPLES, start_document
from tests.fake_chat_server import (
    FakeChatServer,
    Reply,
    api_error,
    completion,
    concepts_reply,
    fake_chat_server,
    model_for_family,
    retry_delay_of,
)

CONCEPTS = {"concepts": [{"name": "compensating action", "kind": "term", "salience": 0.9}]}


async def test_with_a_model_configured_the_concepts_are_the_models(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    document = tmp_path / "saga-pattern.md"
    shutil.copy(SAMPLES / "saga-pattern.md", document)
    with fake_chat_server(lambda _body, _index: (200, {}, completion(json.dumps(CONCEPTS)))) as server:
        model_for_family(monkeypatch, "document", server.base_url)
        settings = DocumentSettings(roots=(tmp_path,))
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
            result = await (await start_document(dev_client, task_queue, document)).result()
    assert len(server.requests) == result.chunk_count
    assert (result.provider, result.model, result.fallback) == ("openai", "local-model", None)
    assert [c.name for c in result.top_concepts] == ["compensating action"]


async def test_with_the_breaker_open_the_offline_extractor_answers_and_the_result_says_why(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    document = tmp_path / "durable-execution.txt"
    shutil.copy(SAMPLES / "durable-execution.txt", document)
    settings = DocumentSettings(roots=(tmp_path,))
    # The same document without a model, in a database of its own.
    offline_db = Database(f"sqlite:///{tmp_path / 'offline.db'}")
    async with running_worker(dev_client, offline_db, task_queue=task_queue, activity_threads=4, settings=[settings]):
        offline = await (await start_document(dev_client, task_queue, document)).result()
    offline_db.dispose()
    with fake_chat_server(lambda _body, _index: api_error(503, "overloaded")) as server:
        model_for_family(monkeypatch, "document", server.base_url)
        monkeypatch.setenv("SAGAWORKS_BREAKER_LLM", "1/600")
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
            handle = await start_document(dev_client, task_queue, document, extract_window=1, chunks_per_activity=1)
            result = await handle.result()
            trace = await trace_run(dev_client, handle.id, payloads=True)
    # The first call failed and opened the breaker; no later call reached the provider.
    assert len(server.requests) == 1
    assert result.top_concepts == offline.top_concepts
    assert result.fallback is not None and "breaker llm open" in result.fallback
    summaries = [s.result for s in trace.steps if s.name == "extract_concepts" and s.outcome == "completed"]
    assert summaries and all("breaker llm open" in (s["fallback"] or "") for s in summaries)


# --- Groq's model (ChatGroq) as the document family's -------------------------------------

NOTE = "Sagas undo completed steps with compensations when a later step fails."
BREAKER_FAILURES = 3
"""Failures that open the ``llm`` breaker in these tests."""


async def _extract_on_groq(
    dev_client: Client,
    db: Database,
    task_queue: str,
    tmp_path: Path,
    replies: list[Reply],
    while_running: Callable[[WorkflowHandle[Any, Any]], Awaitable[None]] | None = None,
) -> tuple[DocumentResult, FakeChatServer]:
    """A one-chunk note through a worker whose gateway asks Groq's client, at a local server
    answering request n with ``replies[n]`` (then the last): the result and the server."""
    document = tmp_path / "note.txt"
    document.write_text(NOTE)
    with fake_chat_server(lambda _body, index: replies[min(index, len(replies) - 1)]) as server:
        model = LLMSettings("groq", "test-model", server.base_url, "test-key")
        breakers = Breakers(db, {"llm": BreakerConfig(BREAKER_FAILURES, 600)})
        gateway = LLM(db, settings=model, budget=LLMBudget(requests=0, tokens=0), breakers=breakers)
        settings = [DocumentSettings(roots=(tmp_path,)), gateway]
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=settings):
            handle = await start_document(dev_client, task_queue, document)
            if while_running is not None:
                await while_running(handle)
            return await handle.result(), server


async def test_on_groq_the_chunk_is_asked_in_json_mode_and_the_result_names_the_model(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    replies = [concepts_reply("saga", "compensation")]
    result, groq = await _extract_on_groq(dev_client, db, task_queue, tmp_path, replies)
    assert (result.provider, result.model, result.fallback) == ("groq", "test-model", None)
    assert [c.name for c in result.top_concepts] == ["saga", "compensation"]
    assert len(groq.requests) == 1 and NOTE in groq.prompt_of(0)
    assert groq.requests[0][1]["response_format"] == {"type": "json_object"}


async def test_on_groq_rate_limits_are_waited_out_after_retry_after_and_never_count_as_failures(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    replies = [
        api_error(429, "slow down", {"retry-after": "3"}),
        *[api_error(429, "slow down", {"retry-after": "0.1"})] * BREAKER_FAILURES,
        concepts_reply("saga"),
    ]
    delays: list[timedelta] = []

    async def first_retry_delay(handle: WorkflowHandle[Any, Any]) -> None:
        delays.append(await retry_delay_of(handle, "extract_concepts"))

    result, groq = await _extract_on_groq(dev_client, db, task_queue, tmp_path, replies, first_retry_delay)
    # The policy's own first interval is 1 s: a 3 s retry delay is Retry-After's.
    assert delays == [timedelta(seconds=3)]
    # More 429s than the breaker's failures: counted as failures they would have opened it.
    assert (result.fallback, [c.name for c in result.top_concepts]) == (None, ["saga"])
    assert len(groq.requests) == BREAKER_FAILURES + 2


async def test_on_groq_a_5xx_is_retried_then_the_model_answers(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    replies = [api_error(500, "upstream broke"), concepts_reply("saga")]
    result, groq = await _extract_on_groq(dev_client, db, task_queue, tmp_path, replies)
    assert (result.fallback, [c.name for c in result.top_concepts]) == (None, ["saga"])
    assert len(groq.requests) == 2


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (api_error(401, "invalid api key"), "groq:test-model: HTTP 401: invalid api key"),
        (
            (200, {}, completion("Sure! Here are the concepts: saga, compensation")),
            "groq:test-model's answer is unusable",
        ),
    ],
    ids=["refused", "unusable-answer"],
)
async def test_on_groq_a_refusal_or_an_unusable_answer_falls_back_at_once_saying_why(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path, reply: Reply, reason: str
) -> None:
    result, groq = await _extract_on_groq(dev_client, db, task_queue, tmp_path, [reply])
    assert len(groq.requests) == 1  # not asked again: the offline extractor is the answer
    assert result.fallback is not None and f"chunk 0: {reason}" in result.fallback
    assert result.concept_count > 0
