"""Contracts of the document pipeline and of document batches.

Workflows pass ids and counts, never document text (claim check): chunk text and concepts
live in the database, so a large document keeps its workflow history small.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, Field

from contracts.common import ProgressStatus, StrictModel, Text

DocumentFormat = Literal["txt", "md", "html", "pdf", "docx"]



def document_id_for(path: str) -> str:
    """The id of the document at an absolute path: stable across runs and versions."""
    return hashlib.sha256(path.encode()).hexdigest()[:16]


def document_workflow_id(document_id: str) -> str:
    """The workflow id of a document's pipeline run."""
    return f"document-{document_id}"


class DocumentInput(StrictModel):
    """Process one document: validate, parse, chunk, extract concepts, store."""

    path: Text = Field(min_length=1, max_length=4096)
    """Absolute path as the worker sees it; it must lie under the worker's document roots."""
    chunk_size: int = Field(default=2000, ge=200, le=20_000)
    chunk_overlap: int = Field(default=200, ge=0, le=2_000)
    extract_window: int = Field(default=8, ge=1, le=64)
    """Chunks whose concepts are extracted at once."""


class ValidateInput(StrictModel):
    path: str
    run_key: str


class DocumentRef(StrictModel):
    """A validated document version: what later steps need to find it again."""

    document_id: str
    path: str
    content_hash: str
    format: DocumentFormat
    size_bytes: int
    already_completed: bool
    """This exact content was processed before: its stored concepts are the result."""


class ChunkInput(StrictModel):
    document: DocumentRef
    run_key: str
    chunk_size: int
    chunk_overlap: int


class ChunkSummary(StrictModel):
    chunk_count: int
    char_count: int


class ExtractInput(StrictModel):
    document_id: str
    content_hash: str
    chunk_index: int
    run_key: str


class ExtractSummary(StrictModel):
    concept_count: int


class ExtractRangeInput(StrictModel):
    """Extract concepts from chunks ``start`` (inclusive) to ``end`` (exclusive)."""

    document_id: str
    content_hash: str
    run_key: str
    start: int
    end: int
    window: int


class StoreInput(StrictModel):
    document: DocumentRef
    run_key: str


class DiscardInput(StrictModel):
    """Remove the rows one run wrote for a document version."""

    document_id: str
    content_hash: str
    run_key: str


class FailureRecord(StrictModel):
    document_id: str
    run_key: str
    error_class: str
    message: str
    status: Literal["FAILED", "CANCELED"]


class StoredConcept(BaseModel):
    name: str
    kind: str
    salience: float
    mentions: int
    evidence_chunk: int


class DocumentResult(BaseModel):
    """A processed document: where its concepts are stored and the most salient ones."""

    document_id: str
    path: str
    content_hash: str
    format: DocumentFormat
    chunk_count: int
    concept_count: int
    provider: str
    model: str
    stored_in: str
    """Database (password hidden) and tables holding the rows."""
    top_concepts: list[StoredConcept]
    reused: bool = False
    """The same content had been processed before; nothing was extracted again."""


DocumentState = Literal["running", "paused", "compensating", "completed", "failed", "canceled"]


class DocumentStatus(ProgressStatus):
    """Live state of a document run: ``done``/``total`` count chunks."""

    document_id: str
    state: DocumentState


class BatchInput(StrictModel):
    """Process every document in a folder (not recursive), a bounded number at a time."""

    folder: Text = Field(min_length=1, max_length=4096)
    max_in_flight: int = Field(default=4, ge=1, le=100)
    documents_per_run: int = Field(default=50, ge=1, le=5000)
    """Children one run starts before the batch continues as new (history stays small)."""
    chunk_size: int = Field(default=2000, ge=200, le=20_000)
    paths: list[str] | None = None
    """Set when the batch continues as new: the documents still to process."""
    outcomes: list[DocumentOutcome] = []
    """Set when the batch continues as new: the outcomes so far."""
    total: int | None = None


class DocumentOutcome(BaseModel):
    path: str
    workflow_id: str
    status: Literal["COMPLETED", "REJECTED", "FAILED", "CANCELED"]
    error: str | None = None
    concept_count: int | None = None


class BatchResult(BaseModel):
    folder: str
    total: int
    completed: int
    rejected: int
    failed: int
    documents: list[DocumentOutcome]


class BatchStatus(ProgressStatus):
    """Live state of a batch: ``done``/``total`` count documents."""

    in_flight: int
    rejected: int
    failed: int


BatchInput.model_rebuild()
