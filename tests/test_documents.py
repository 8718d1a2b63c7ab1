"""The document pipeline on the dev server with the offline provider."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Worker

from activities.db import Database
from activities.documents import DocumentSettings
from activities.llm import LLMProvider, OfflineProvider
from tests.documents import (
    BAD_SAMPLES,
    GOOD_SAMPLES,
    SAMPLES,
    SlowOfflineProvider,
    document_row,
    start_document,
    version_rows,
)
from tests.orders import final_status, wait_for_status
from worker import running_worker
from workflows.document import SEGMENT_CHUNKS, DocumentPipeline

WorkerFactory = Callable[..., AbstractAsyncContextManager[Worker]]


@pytest.fixture
def doc_worker(dev_client: Client, db: Database, task_queue: str, tmp_path: Path) -> WorkerFactory:
    """Start the real worker with a chosen provider and document limits."""

    def make(llm: LLMProvider | None = None, **limits: int) -> AbstractAsyncContextManager[Worker]:
        settings = DocumentSettings(roots=(SAMPLES, tmp_path), **limits)
        return running_worker(
            dev_client, db, task_queue=task_queue, activity_threads=8, llm=llm or OfflineProvider(), documents=settings
        )

    return make


@pytest.mark.parametrize("path", GOOD_SAMPLES, ids=lambda p: p.name)
async def test_each_format_yields_stored_concepts(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, path: Path
) -> None:
    async with doc_worker():
        result = await (await start_document(dev_client, task_queue, path)).result()
    assert result.format == path.suffix.lstrip(".")
    assert result.provider == "offline" and result.model.startswith("yake-")
    assert result.concept_count >= 5 and result.top_concepts[0].salience >= result.top_concepts[-1].salience
    rows = version_rows(db, result.document_id, result.content_hash)
    assert rows["document_chunks"] == result.chunk_count > 0
    assert rows["concepts"] == result.concept_count
    assert document_row(db, path).status == "COMPLETED"


async def test_rerunning_the_same_content_reuses_the_stored_result(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database
) -> None:
    path = SAMPLES / "durable-execution.txt"
    async with doc_worker():
        first = await (await start_document(dev_client, task_queue, path)).result()
        before = version_rows(db, first.document_id)
        second = await (await start_document(dev_client, task_queue, path)).result()
    assert second.reused and not first.reused
    assert second.top_concepts == first.top_concepts
    assert version_rows(db, first.document_id) == before


def _rejections(tmp_path: Path) -> list[tuple[Path, str]]:
    outside = tmp_path.parent / "outside.txt"
    outside.write_text("not under any allowed root")
    link = tmp_path / "link.txt"
    link.symlink_to(outside)
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    reasons = {
        "bad-empty.txt": "empty file",
        "bad-mislabelled.pdf": "mislabelled: extension .pdf but the content is txt",
        "bad-latin1.txt": "undecodable text",
        "bad-image.txt": "unsupported type image/png",
        "bad-corrupt.pdf": "corrupt PDF",
        "bad-encrypted.pdf": "encrypted PDF",
        "bad-notaword.docx": "not a .docx",
        "bad-program.exe": "unsupported type",
    }
    cases = [(p, reasons[p.name]) for p in BAD_SAMPLES]
    return cases + [
        (tmp_path / "missing.txt", "file not found"),
        (outside, "outside the allowed document roots"),
        (link, "outside the allowed document roots"),
        (big, "over the limit of 4000"),
    ]


async def test_bad_inputs_are_rejected_with_the_file_and_the_reason(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, tmp_path: Path
) -> None:
    cases = _rejections(tmp_path)
    async with doc_worker(max_bytes=4000):
        handles = [await start_document(dev_client, task_queue, path) for path, _ in cases]
        for (path, reason), handle in zip(cases, handles, strict=True):
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
            cause = failure.value.cause
            assert isinstance(cause, ApplicationError) and cause.type == "ValidationError"
            assert str(path) in cause.message and reason in cause.message
            row = document_row(db, path)
            assert row.status == "REJECTED" and reason in (row.error_message or "")
            assert await final_status(handle) == "FAILED"


async def test_a_large_document_keeps_every_history_small(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, tmp_path: Path
) -> None:
    path = tmp_path / "large.txt"
    sentence = "Durable execution keeps a workflow's progress in its event history. "
    path.write_text((sentence * 30 + "\n\n") * 1000)  # ~2 MB, ~1,000 chunks
    async with doc_worker():
        handle = await start_document(dev_client, task_queue, path)
        result = await asyncio.wait_for(handle.result(), timeout=600)
    assert result.chunk_count > 2 * SEGMENT_CHUNKS
    histories = [await handle.fetch_history()]
    async for child in dev_client.list_workflows(f"WorkflowId STARTS_WITH '{handle.id}/extract-'"):
        histories.append(await dev_client.get_workflow_handle(child.id).fetch_history())
    assert len(histories) == 1 + -(-result.chunk_count // SEGMENT_CHUNKS)
    sizes = [len(h.to_json().encode()) for h in histories]
    assert max(sizes) < 1_000_000, sizes


async def test_pause_resume_and_cancel_discard_the_run(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "slow.md"
    path.write_text("\n\n".join(f"Paragraph {i} about compensation and sagas. " * 20 for i in range(20)))
    async with doc_worker(SlowOfflineProvider(delay=0.1)):
        handle = await start_document(dev_client, task_queue, path, chunk_size=500, extract_window=1)
        await _wait_status(handle, lambda s: s.done >= 2)
        await handle.signal(DocumentPipeline.pause)
        paused = await _wait_status(handle, lambda s: s.state == "paused")
        await asyncio.sleep(0.6)
        assert (await handle.query(DocumentPipeline.status)).done <= paused.done + 1
        await handle.signal(DocumentPipeline.resume)
        await _wait_status(handle, lambda s: s.done >= paused.done + 2)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    row = document_row(db, path)
    assert row.status == "CANCELED"
    assert version_rows(db, row.document_id) == {"document_chunks": 0, "concept_mentions": 0, "concepts": 0}


def _wait_status(handle, predicate):
    return wait_for_status(handle, predicate, query=DocumentPipeline.status)


def test_samples_cover_every_format() -> None:
    assert {p.suffix for p in GOOD_SAMPLES} == {".txt", ".md", ".html", ".pdf", ".docx"}
    assert shutil.which  # the samples are committed, not generated at test time
