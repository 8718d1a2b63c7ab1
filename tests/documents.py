"""Helpers for tests of the document pipeline."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from sagaworks import WorkerResources, registry
from sagaworks.activities.db import Database
from sagaworks.activities.document import VERSION_TABLES, ChunkRow, DocumentActivities, DocumentRow, DocumentSettings
from sagaworks.activities.errors import ErrorClass, error
from sagaworks.activities.llm import ConceptList, LLMProvider, OfflineProvider
from sagaworks.contracts.document import (
    BatchInput,
    BatchResult,
    ChunkInput,
    ChunkSummary,
    DocumentInput,
    DocumentRef,
    DocumentResult,
    ExtractInput,
    ExtractSummary,
    ValidateInput,
    document_id_for,
    document_workflow_id,
)
from sagaworks.worker import worker_parts
from sagaworks.workflows.document import DocumentPipeline
from sagaworks.workflows.document_batch import DocumentBatch
from tests.payloads import wait_for_event

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "documents"
GOOD_SAMPLES = sorted(p for p in SAMPLES.iterdir() if not p.name.startswith("bad-"))
BAD_SAMPLES = sorted(SAMPLES.glob("bad-*"))


async def start_document(
    client: Client, task_queue: str, path: Path, **options: Any
) -> WorkflowHandle[DocumentPipeline, DocumentResult]:
    """Start a document's pipeline under the id its path gives, as the catalog does."""
    absolute = str(path.absolute())  # not resolved: the worker must see symlinks as given
    return await client.start_workflow(
        DocumentPipeline.run,
        DocumentInput(path=absolute, **options),
        id=document_workflow_id(document_id_for(absolute)),
        task_queue=task_queue,
    )


async def start_batch(client: Client, task_queue: str, batch: BatchInput) -> WorkflowHandle[DocumentBatch, BatchResult]:
    """Start a document batch under a workflow id of its own."""
    return await client.start_workflow(DocumentBatch.run, batch, id=f"batch-{uuid.uuid4()}", task_queue=task_queue)


def version_rows(db: Database, document_id: str, content_hash: str | None = None) -> dict[str, int]:
    """Rows per table of a document (one version of it when ``content_hash`` is given)."""
    counts = {}
    with db.transaction() as session:
        for table in VERSION_TABLES:
            query = select(func.count()).select_from(table).where(table.document_id == document_id)
            if content_hash:
                query = query.where(table.content_hash == content_hash)
            counts[table.__tablename__] = session.scalar(query) or 0
    return counts


def chunk_texts(db: Database, document_id: str, rows_key: str) -> list[str]:
    """The stored chunks of a document version, in order."""
    with db.transaction() as session:
        return list(
            session.scalars(
                select(ChunkRow.text)
                .where(ChunkRow.document_id == document_id, ChunkRow.content_hash == rows_key)
                .order_by(ChunkRow.chunk_index)
            )
        )


def document_row(db: Database, path: Path) -> DocumentRow:
    """The row of the document at ``path`` (a real path, unless its run was rejected first)."""
    with db.transaction() as session:
        row = session.get(DocumentRow, document_id_for(str(path)))
        assert row is not None, f"no row for {path}"
        return row


def all_document_rows(db: Database) -> list[DocumentRow]:
    with db.transaction() as session:
        return list(session.scalars(select(DocumentRow)))


class Gate:
    """Holds one step of the document pipeline until the test releases it."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.entered = threading.Event()
        self.released = threading.Event()

    def hold(self, step: str) -> None:
        if step == self.step and not self.released.is_set():
            self.entered.set()
            assert self.released.wait(120), f"the test never released {step}"

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 120), f"{self.step} never started"


class GatedDocumentActivities(DocumentActivities):
    """The real document activities; ``gate.step`` waits for the test before it runs."""

    def __init__(self, db: Database, llm: LLMProvider, settings: DocumentSettings, gate: Gate) -> None:
        super().__init__(db, llm, settings)
        self.gate = gate

    @activity.defn(name="validate_document")
    def validate_document(self, request: ValidateInput) -> DocumentRef:
        self.gate.hold("validate")
        return super().validate_document(request)

    @activity.defn(name="chunk_document")
    def chunk_document(self, request: ChunkInput) -> ChunkSummary:
        self.gate.hold("chunk")
        return super().chunk_document(request)

    @activity.defn(name="extract_concepts")
    def extract_concepts(self, request: ExtractInput) -> ExtractSummary:
        self.gate.hold("extract")
        return super().extract_concepts(request)


@asynccontextmanager
async def gated_worker(
    client: Client,
    db: Database,
    task_queue: str,
    settings: DocumentSettings,
    gate: Gate,
    llm: LLMProvider | None = None,
) -> AsyncIterator[Worker]:
    """The worker's workflows and activities, the document ones held by ``gate``."""
    gated = GatedDocumentActivities(db, llm or OfflineProvider(), settings, gate)
    activities = [
        getattr(gated, fn.__name__) if isinstance(getattr(fn, "__self__", None), DocumentActivities) else fn
        for fn in worker_parts(registry().families, WorkerResources(db, settings=(settings,))).activities
    ]
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=registry().workflows(),
            activities=activities,
            activity_executor=executor,
            max_concurrent_activities=8,
        ) as worker:
            yield worker


async def wait_for_cancel_request(handle: WorkflowHandle[Any, Any]) -> None:
    """Until the server has recorded the cancellation request in the run's history."""
    await wait_for_event(handle, lambda e: e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)


class SlowOfflineProvider(OfflineProvider):
    """The offline provider, slowed down so a test can act mid-extraction."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self._delay = delay

    def extract_concepts(self, text: str) -> ConceptList:
        time.sleep(self._delay)
        return super().extract_concepts(text)


class PoisonAwareProvider(OfflineProvider):
    """The offline provider, but text containing POISON fails for good like a refused call."""

    def extract_concepts(self, text: str) -> ConceptList:
        if "POISON" in text:
            raise error(ErrorClass.MODEL, "model refused the content (HTTP 400)", non_retryable=True)
        return super().extract_concepts(text)
