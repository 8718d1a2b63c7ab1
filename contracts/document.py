"""Contracts of the document pipeline and of document batches.

Workflows pass ids and counts, never document text (claim check): chunk text and concepts
live in the database, so a large document keeps its workflow history small.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from sagaworks import StepStatus, StrictData, StrictModel, Text

DocumentFormat = Literal["txt", "md", "html", "pdf", "docx"]

BATCH_STEPS = ("list", "process")
"""A batch's steps: list the folder (one activity), process the documents (the children)."""

DOCUMENT_STEPS = ("resolve", "validate", "chunk", "extract", "store")
"""The document pipeline's steps (``saga restart ID --from STEP`` names one up to
``extract``; extraction is many activities, so a restart cannot reuse it). Every run ends
with ``finalise_document``, which is not a step: it records how the run ended."""


def normalise_path(path: str) -> str:
    """``path`` without ``.``, ``..`` or doubled slashes (lexically: no file system access).

    The worker resolves symlinks too (:func:`activities.document` does); this much a
    workflow or a client can do without touching the disk.
    """
    return posixpath.normpath(path) if path else path


def document_id_for(path: str) -> str:
    """The id of the document at ``path`` (normalised): stable across runs and versions.

    ``/docs/a/../b.txt`` and ``/docs/b.txt`` are one document with one id; the pipeline
    resolves symlinks and relative paths before it touches a row (``resolve_document``).
    """
    return hashlib.sha256(normalise_path(path).encode()).hexdigest()[:16]


def document_workflow_id(document_id: str) -> str:
    """The workflow id of a document's pipeline run."""
    return f"document-{document_id}"


class DocumentInput(StrictModel):
    """Process one document: validate, parse, chunk, extract concepts, store."""

    path: Text = Field(min_length=1, max_length=4096)
    """Path as the worker sees it, absolute or relative to the worker's (first) document
    root; it must lie under the worker's document roots."""
    chunk_size: int = Field(default=2000, ge=200, le=20_000)
    chunk_overlap: int = Field(default=200, ge=0, le=2_000)
    extract_window: int = Field(default=8, ge=1, le=64)
    """Extraction activities in flight at once (each takes ``chunks_per_activity`` chunks,
    one after another, so at most this many model calls are in flight)."""
    chunks_per_activity: int = Field(default=8, ge=1, le=64)
    """Chunks one extraction activity takes at most, one after another: fewer activities
    (each is a server round trip and three history events) at the price of a coarser step;
    a retried activity skips the chunks it already stored. Fewer when the document has too
    few chunks to fill ``extract_window`` activities."""
    resume: SkipJsonSchema[RecordedResume | None] = None
    """Set only in the input of runs restarted before the pipeline ran on the step runner
    (they replay with it); a run started since refuses it. Not in the JSON schema (forms,
    OpenAPI); catalog parsing refuses it from callers."""


class ValidateInput(StrictModel):
    path: str
    run_key: str
    chunk_size: int = 2000
    chunk_overlap: int = 200
    """The chunking the run will use: a stored result made with another is not reused."""


class DocumentRef(StrictModel):
    """A validated document version: what later steps need to find it again."""

    document_id: str
    path: str
    content_hash: str
    format: DocumentFormat
    size_bytes: int
    already_completed: bool
    """This exact content was processed before: its stored concepts are the result."""
    version: str = ""
    """Key of the rows of this content chunked this way (content hash + chunk size +
    overlap): two chunkings of one content never mix their rows. Empty in runs recorded
    before it existed, which keyed rows by :attr:`content_hash` alone."""

    @property
    def rows_key(self) -> str:
        """What the version tables' ``content_hash`` column holds for this version."""
        return self.version or self.content_hash


def version_key(content_hash: str, chunk_size: int, chunk_overlap: int) -> str:
    """The rows key of a content chunked one way (fits the 64-character key columns)."""
    return f"{content_hash[:40]}/{chunk_size}/{chunk_overlap}"


class ChunkInput(StrictModel):
    document: DocumentRef
    run_key: str
    chunk_size: int
    chunk_overlap: int


class ChunkSummary(StrictModel):
    chunk_count: int
    char_count: int


class RecordedResume(StrictModel):
    """The resume point runs restarted before the step runner carried in their input
    (``from_stage`` ``chunk`` or ``extract``), kept so their histories decode and replay.

    Nothing makes one now: ``saga restart ID --from STEP`` hands a run the results of the
    steps before STEP through its memo (:class:`sagaworks.StepsRestart`).
    """

    from_stage: str
    source_workflow_id: str
    document: DocumentRef | None = None
    chunks: ChunkSummary | None = None


class ExtractInput(StrictModel):
    document_id: str
    content_hash: str
    """The version's rows key (:attr:`DocumentRef.rows_key`)."""
    chunk_index: int
    """The first chunk."""
    run_key: str
    chunk_count: int = Field(default=1, ge=1)
    """Chunks ``chunk_index`` to ``chunk_index + chunk_count - 1``; 1 in runs recorded before
    extraction took several chunks per activity."""


class ExtractSummary(StrictModel):
    concept_count: int
    chunk_count: int = 1
    """The chunks extracted (1 in runs recorded before several per activity)."""
    fallback: str | None = None
    """Why the family's offline extractor answered some of these chunks although a model
    is configured (the LLM gateway's breaker open, its budget spent, a refusal, an
    unusable answer), chunk by chunk; None when the model answered them all or none is
    configured."""


class ExtractRangeInput(StrictModel):
    """Extract concepts from chunks ``start`` (inclusive) to ``end`` (exclusive)."""

    document_id: str
    content_hash: str
    """The version's rows key (:attr:`DocumentRef.rows_key`)."""
    run_key: str
    start: int
    end: int
    window: int
    chunks_per_activity: int = 1
    """1 in runs recorded before extraction took several chunks per activity."""


class StoreInput(StrictModel):
    document: DocumentRef
    run_key: str


FinalStatus = Literal["COMPLETED", "REJECTED", "FAILED", "CANCELED"]


class FinaliseInput(StrictModel):
    """The end of a run: the document row's final state, and this run's rows to remove.

    Sent once per run whatever happened, by the run itself (``finalise_document``).
    """

    document_id: str
    path: str
    run_key: str
    status: FinalStatus
    rows_key: str | None = None
    """The version whose rows this run may have written (None: it wrote none)."""
    error_class: str | None = None
    message: str | None = None


class FinaliseResult(StrictModel):
    removed_rows: int
    """Rows of this run removed because it did not complete."""


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
    version: str = ""
    """The rows key of this version in the version tables (:attr:`DocumentRef.rows_key`)."""
    fallback: str | None = None
    """Why the offline extractor answered some chunks although a model is configured: the
    :attr:`ExtractSummary.fallback` of the run's extractions (a document of more than
    ``SEGMENT_CHUNKS`` chunks is extracted by child runs, whose histories say it instead)."""


DocumentState = Literal["running", "paused", "compensating", "completed", "failed", "canceled"]


class DocumentStatus(StepStatus):
    """Live state of a document run: ``done``/``total`` count chunks (extracted / stored);
    ``plan``, ``completed_steps`` and ``steps`` are the step runner's (empty in runs
    recorded before it)."""

    document_id: str
    state: DocumentState


class BatchInput(StrictModel):
    """Process every document in a folder and its subfolders, a bounded number at a time.

    Subfolders are walked to a depth of ``MAX_FOLDER_DEPTH``; hidden files and folders and
    symlinked folders are skipped; a folder of more than ``MAX_BATCH_DOCUMENTS`` documents is
    refused (split it). The listing is stored in the worker's database and read a page at a
    time (at most ``LISTING_PAGE_BYTES`` of paths), so however long its paths it never
    travels in the history; the result lists the documents' outcomes up to
    ``LISTED_OUTCOME_BYTES`` and counts the rest (``documents_not_listed``).
    """

    folder: Text = Field(
        min_length=1,
        max_length=4096,
        description="Absolute, or relative to the worker's (first) document root; at most 10,000 documents "
        "(MAX_BATCH_DOCUMENTS) in it and 8 subfolder levels below it (MAX_FOLDER_DEPTH).",
    )
    """Absolute, or relative to the worker's (first) document root."""
    max_in_flight: int = Field(default=4, ge=1, le=100)
    documents_per_run: int = Field(default=50, ge=1, le=5000)
    """Children one run starts before the batch continues as new (history stays small)."""
    chunk_size: int = Field(default=2000, ge=200, le=20_000)
    chunks_per_activity: int = Field(default=8, ge=1, le=64)
    """Each document's :attr:`DocumentInput.chunks_per_activity`."""
    paths: list[str] | None = None
    """Set when a batch that read its listing whole continued as new: the documents still to
    process (batches started before the listing was stored)."""
    listing: Text | None = None
    """Set when the batch continues as new: the id of its stored listing..."""
    offset: int = Field(default=0, ge=0)
    """...and how many of its documents were started."""
    outcomes: list[DocumentOutcome] = []
    """Set when the batch continues as new: the outcomes so far (up to ``LISTED_OUTCOME_BYTES``)."""
    counts: dict[Literal["COMPLETED", "REJECTED", "FAILED", "CANCELED"], int] | None = None
    """Set when the batch continues as new: outcomes so far by status, listed or not."""
    outcomes_not_listed: int = Field(default=0, ge=0)
    """Set when the batch continues as new: outcomes counted but not listed."""
    total: int | None = None
    paused: bool = False
    """Set when the batch continues as new: it was paused then, so it stays paused."""


MAX_FOLDER_DEPTH = 8
"""Subfolder levels a batch walks below its folder."""
MAX_BATCH_DOCUMENTS = 10_000
"""Documents one batch accepts."""
LISTING_PAGE_BYTES = 256 * 1024
"""The most bytes of paths one page of a batch's stored listing holds (at least one path)."""
LISTED_OUTCOME_BYTES = 256 * 1024
"""About the most bytes of outcomes a batch lists (and carries across continue-as-new); the
outcomes past it are counted (``BatchResult.documents_not_listed``) and each document's
state is in the ``documents`` table."""


class ListingPage(StrictModel):
    """A page of a batch's stored listing: up to ``limit`` paths from ``offset`` on, at most
    ``LISTING_PAGE_BYTES`` of them."""

    listing: str
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)


class StoredListing(BaseModel):
    """A folder's listing, stored in the worker's database under ``listing``."""

    listing: str
    total: int


class DocumentOutcome(StrictData):
    """A document's outcome in its batch (strict: ``BatchInput.outcomes`` carries them across
    continue-as-new). Paths and errors are the files' own, as found."""

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
    """Each document's outcome, in the order they ended, up to ``LISTED_OUTCOME_BYTES``."""
    canceled: int = 0
    documents_not_listed: int = 0
    """Outcomes counted above but not listed in ``documents`` (past ``LISTED_OUTCOME_BYTES``)."""


class BatchStatus(StepStatus):
    """Live state of a batch: ``done``/``total`` count documents.

    ``state`` is running, paused, completed, failed or canceled (the batch itself);
    ``plan``, ``completed_steps`` and ``steps`` are the step runner's (this run's: a batch
    that continued as new lists no ``list`` step).
    """

    in_flight: int
    rejected: int
    failed: int
    canceled: int = 0


BatchInput.model_rebuild()
DocumentInput.model_rebuild()
