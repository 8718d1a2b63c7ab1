"""Helpers for tests of the document pipeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio.client import Client, WorkflowHandle

from activities.db import Database
from activities.errors import ErrorClass, error
from activities.documents import VERSION_TABLES, DocumentRow
from activities.llm import ConceptList, OfflineProvider
from workflows.document import DocumentPipeline
from contracts.documents import DocumentInput, DocumentResult, document_id_for, document_workflow_id

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "documents"
GOOD_SAMPLES = sorted(p for p in SAMPLES.iterdir() if not p.name.startswith("bad-"))
BAD_SAMPLES = sorted(SAMPLES.glob("bad-*"))


async def start_document(
    client: Client, task_queue: str, path: Path, **options: Any
) -> WorkflowHandle[DocumentPipeline, DocumentResult]:
    absolute = str(path.absolute())  # not resolved: the worker must see symlinks as given
    return await client.start_workflow(
        DocumentPipeline.run,
        DocumentInput(path=absolute, **options),
        id=document_workflow_id(document_id_for(absolute)),
        task_queue=task_queue,
    )


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


def document_row(db: Database, path: Path) -> DocumentRow:
    with db.transaction() as session:
        row = session.get(DocumentRow, document_id_for(str(path)))
        assert row is not None
        return row


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
