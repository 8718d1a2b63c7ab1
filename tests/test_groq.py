"""The real ChatGroq client against a local chat-completions server, through Temporal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.db import Database
from activities.documents import DocumentSettings
from activities.llm import INVALID_OUTPUT_ATTEMPTS, GroqProvider
from tests.documents import document_row, start_document, version_rows
from tests.fake_chat_server import FakeChatServer, Reply, api_error, completion, concepts_reply, fake_chat_server
from worker import running_worker


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "note.txt"
    path.write_text("Sagas undo completed steps with compensations when a later step fails.")
    return path


def _scripted(*replies: Reply):
    """Answer request n with replies[n] (the last one from then on)."""
    return lambda _body, index: replies[min(index, len(replies) - 1)]


async def _run(dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer):
    llm = GroqProvider(api_key="test-key", model="test-model", base_url=server.base_url)
    settings = DocumentSettings(roots=(document.parent,))
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, llm=llm, documents=settings):
        return await (await start_document(dev_client, task_queue, document)).result()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeChatServer]:
    with fake_chat_server(_scripted(*request.param)) as running:
        yield running


@pytest.mark.parametrize("server", [[concepts_reply("saga", "compensation")]], indirect=True)
async def test_success(dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer) -> None:
    result = await _run(dev_client, db, task_queue, document, server)
    assert (result.provider, result.model) == ("groq", "test-model")
    assert [c.name for c in result.top_concepts] == ["saga", "compensation"]
    assert "Sagas undo completed steps" in server.prompt_of(0)
    assert server.requests[0][1]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    "server", [[api_error(429, "slow down", {"retry-after": "3"}), concepts_reply("saga")]], indirect=True
)
async def test_429_waits_for_retry_after_then_succeeds(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer
) -> None:
    result = await _run(dev_client, db, task_queue, document, server)
    assert result.concept_count == 1 and len(server.requests) == 2
    waited = server.requests[1][0] - server.requests[0][0]
    # The policy's own first interval is 1 s: waiting 3 s means Retry-After was honoured.
    assert 2.9 <= waited < 10, waited


@pytest.mark.parametrize("server", [[api_error(500, "upstream broke"), concepts_reply("saga")]], indirect=True)
async def test_500_is_retried_then_succeeds(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer
) -> None:
    result = await _run(dev_client, db, task_queue, document, server)
    assert result.concept_count == 1 and len(server.requests) == 2


@pytest.mark.parametrize("server", [[api_error(401, "invalid api key")]], indirect=True)
async def test_401_is_not_retried_and_fails_clearly(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer
) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(dev_client, db, task_queue, document, server)
    assert len(server.requests) == 1
    assert "Groq HTTP 401: invalid api key" in str(failure.value.cause)
    row = document_row(db, document)
    assert (row.status, row.error_class) == ("FAILED", "ModelError")
    assert version_rows(db, row.document_id) == {"document_chunks": 0, "concept_mentions": 0, "concepts": 0}


@pytest.mark.parametrize("server", [[(200, {}, completion("Sure! Here are the concepts: saga, compensation"))]], indirect=True)
async def test_malformed_output_is_retried_a_bounded_number_of_times_then_fails(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer
) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(dev_client, db, task_queue, document, server)
    assert len(server.requests) == INVALID_OUTPUT_ATTEMPTS
    chain, root = [], failure.value.cause
    while root is not None:
        chain.append(root)
        root = root.__cause__
    model_error = next(e for e in chain if isinstance(e, ApplicationError) and e.type == "ModelError")
    assert "model output failed validation" in model_error.message
    assert model_error.details[0]["raw_output"].startswith("Sure! Here are the concepts")
