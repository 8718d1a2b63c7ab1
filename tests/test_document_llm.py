"""The document family's concept extraction through the LLM gateway: the configured model
answers, and when the gateway's breaker is open the offline extractor does, and the
result and the extraction's summary say why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from temporalio.client import Client

from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.client.trace import trace_run
from sagaworks.worker import running_worker
from tests.documents import SAMPLES, start_document
from tests.fake_chat_server import api_error, completion, fake_chat_server, model_for_family

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
