"""The real ChatGroq client against a local chat-completions server, through Temporal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.activities.llm import FAILED_CALL_ATTEMPTS, INVALID_OUTPUT_ATTEMPTS, RAW_OUTPUT_CHARS, GroqProvider
from sagaworks.worker import running_worker
from tests.documents import document_row, start_document, version_rows
from tests.fake_chat_server import (
    FakeChatServer,
    Reply,
    api_error,
    completion,
    concepts_reply,
    fake_chat_server,
    retry_delay_of,
)


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "note.txt"
    path.write_text("Sagas undo completed steps with compensations when a later step fails.")
    return path


def _scripted(*replies: Reply):
    """Answer request n with replies[n] (the last one from then on)."""
    return lambda _body, index: replies[min(index, len(replies) - 1)]


async def _run(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer, while_running: Any = None
):
    llm = GroqProvider(api_key="test-key", model="test-model", base_url=server.base_url)
    settings = DocumentSettings(roots=(document.parent,))
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, llm=llm, settings=[settings]):
        handle = await start_document(dev_client, task_queue, document)
        if while_running is not None:
            await while_running(handle)
        return await handle.result()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeChatServer]:
    with fake_chat_server(_scripted(*request.param)) as running:
        yield running


@pytest.mark.parametrize("server", [[concepts_reply("saga", "compensation")]], indirect=True)
async def test_success(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer
) -> None:
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
    delays: list[timedelta] = []

    async def record_delay(handle) -> None:
        delays.append(await retry_delay_of(handle, "extract_concepts"))

    result = await _run(dev_client, db, task_queue, document, server, while_running=record_delay)
    assert result.concept_count == 1 and len(server.requests) == 2
    # The policy's own first interval is 1 s: a 3 s retry delay is Retry-After's.
    assert delays == [timedelta(seconds=3)]


@pytest.mark.parametrize(
    "server",
    [[api_error(429, "slow down", {"retry-after": "0.1"})] * (FAILED_CALL_ATTEMPTS + 2) + [concepts_reply("saga")]],
    indirect=True,
)
async def test_rate_limits_do_not_use_up_the_attempts_of_a_chunk(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer
) -> None:
    result = await _run(dev_client, db, task_queue, document, server)
    assert result.concept_count == 1 and len(server.requests) == FAILED_CALL_ATTEMPTS + 3


@pytest.mark.parametrize("server", [[api_error(500, "upstream broke"), concepts_reply("saga")]], indirect=True)
async def test_500_is_retried_then_succeeds(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer
) -> None:
    result = await _run(dev_client, db, task_queue, document, server)
    assert result.concept_count == 1 and len(server.requests) == 2


@pytest.mark.parametrize(
    ("server", "attempts", "message"),
    [
        ([api_error(401, "invalid api key")], 1, "Groq HTTP 401: invalid api key"),
        ([api_error(503, "overloaded")], FAILED_CALL_ATTEMPTS, "Groq HTTP 503: overloaded"),
    ],
    indirect=["server"],
    ids=["401-final-at-once", "503-final-after-bounded-attempts"],
)
async def test_a_failing_call_fails_the_document_clearly(
    dev_client: Client,
    db: Database,
    task_queue: str,
    document: Path,
    server: FakeChatServer,
    attempts: int,
    message: str,
) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(dev_client, db, task_queue, document, server)
    assert len(server.requests) == attempts
    assert message in str(failure.value.cause)
    row = document_row(db, document)
    assert (row.status, row.error_class) == ("FAILED", "ModelError")
    assert version_rows(db, row.document_id) == {"document_chunks": 0, "concept_mentions": 0, "concepts": 0}


def _details_with_raw_output(failure: WorkflowFailureError) -> tuple[ApplicationError, dict[str, Any]]:
    """The model error (and its details) that kept the raw output, beneath the wrappers."""
    error: BaseException | None = failure.cause
    while error is not None:
        if isinstance(error, ApplicationError) and error.details and "raw_output" in error.details[0]:
            return error, error.details[0]
        error = error.__cause__
    raise AssertionError("no failure kept the raw output")


@pytest.mark.parametrize(
    "server", [[(200, {}, completion("Sure! Here are the concepts: saga, compensation"))]], indirect=True
)
async def test_malformed_output_is_retried_a_bounded_number_of_times_then_fails(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer
) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(dev_client, db, task_queue, document, server)
    assert len(server.requests) == INVALID_OUTPUT_ATTEMPTS
    model_error, details = _details_with_raw_output(failure.value)
    assert model_error.type == "ModelError" and "model output failed validation" in model_error.message
    assert details["raw_output"].startswith("Sure! Here are the concepts")


_LEAKY = "Sure! I used key gsk_live_9f8e7d6c5b4a39281706f5e4 for ops@example.com. " + "saga " * 5000


@pytest.mark.parametrize("server", [[(200, {}, completion(_LEAKY))]], indirect=True)
async def test_invalid_output_in_failure_details_is_capped_and_redacted(
    dev_client: Client, db: Database, task_queue: str, document: Path, server: FakeChatServer
) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(dev_client, db, task_queue, document, server)
    _error, details = _details_with_raw_output(failure.value)
    assert len(details["raw_output"]) <= RAW_OUTPUT_CHARS and details["raw_length"] == len(_LEAKY)
    assert details["raw_output"].startswith("Sure! I used [redacted] for [redacted]")
    assert "gsk_" not in details["raw_output"] and "@" not in details["raw_output"]


def test_a_name_no_concept_can_have_is_dropped_not_fatal() -> None:
    from sagaworks.activities.llm import parse_concepts

    raw = (
        '{"concepts": [{"name": "' + "word" * 60 + '", "kind": "term", "salience": 0.9},'
        ' {"name": "saga", "kind": "topic", "salience": 0.8}]}'
    )
    assert [c.name for c in parse_concepts(raw).concepts] == ["saga"]
