"""The document family's activities: resolve, validate, chunk, extract concepts, store,
finalise, and a batch's listing. Activity names are the method names.

Concept extraction goes through the LLM gateway (:class:`sagaworks.LLM`, family
``document``: ``SAGAWORKS_LLM_DOCUMENT_*`` configure its model) with the family's own
extractor (offline YAKE by default) as the fallback: with no model configured the extractor
answers; with one, the extractor answers when the gateway's breaker is open, the budget is
spent, the provider refuses, or the answer does not parse, and the chunk's summary says why
(:attr:`ExtractSummary.fallback`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sagaworks import (
    LLM,
    Database,
    ErrorClass,
    attempts_since,
    bugs_retried,
    database_errors,
    error,
    keep_alive,
    validation_error,
)
from sagaworks.activities.document.extraction import parse_text, split_text
from sagaworks.activities.document.formats import detect_format, open_docx, open_pdf
from sagaworks.activities.document.listing import FolderListing
from sagaworks.activities.document.ranking import rank_concepts
from sagaworks.activities.document.roots import DocumentSettings
from sagaworks.activities.document.tables import VERSION_TABLES, ChunkRow, ConceptRow, DocumentRow, MentionRow, rows_of
from sagaworks.activities.llm import FAILED_CALL_ATTEMPTS, MAX_NAME, ConceptList, LLMProvider
from sagaworks.contracts.document import (
    ChunkInput,
    ChunkSummary,
    DocumentRef,
    DocumentResult,
    ExtractInput,
    ExtractSummary,
    FinaliseInput,
    FinaliseResult,
    StoredConcept,
    StoreInput,
    ValidateInput,
    document_id_for,
    version_key,
)

T = TypeVar("T")

TOP_CONCEPTS = 20
"""Concepts a result carries; all of them are in the database."""

FAMILY = "document"
"""The family's name to the LLM gateway."""

CONCEPT_PROMPT = (
    "Extract the key concepts of the text below. Answer with JSON only, of the form "
    '{"concepts": [{"name": str, "kind": "entity"|"topic"|"term"|"event"|"other", '
    '"salience": number between 0 and 1}]}, at most 15 concepts, most salient first.\n\nText:\n'
)
"""What the gateway's model is asked for each chunk."""
CONCEPT_MAX_TOKENS = 1024


class DocumentActivities(FolderListing):
    """The document pipeline's activities, bound to a database and an LLM provider (a
    batch's folder listing: :class:`~sagaworks.activities.document.listing.FolderListing`)."""

    def __init__(
        self,
        db: Database,
        llm: LLMProvider,
        settings: DocumentSettings | None = None,
        cpu_pool: Executor | None = None,
        gateway: LLM | None = None,
    ) -> None:
        """Serve the activities from ``db``; ``settings`` default from the environment.

        ``llm`` is the family's own concept extractor (the offline one, usually): the
        gateway's fallback, and the only extractor when no model is configured; the
        settings' ``extractor`` is not read here.
        ``gateway`` (default: one configured by the environment) asks the model.
        ``cpu_pool`` (the worker's process pool) parses and splits documents, which holds
        the GIL for seconds on a large one; None does it in the activity's thread.
        """
        self._db = db
        self._llm = llm
        self._gateway = gateway or LLM(db)
        # Without the extractor: the settings go to the process pool (parse_text), and an
        # extractor need not be picklable.
        self._settings = dataclasses.replace(settings or DocumentSettings(), extractor=None)
        self._pool = cpu_pool

    def _provider(self) -> dict[str, str]:
        """Who extracts the concepts: the gateway's model when one is configured, else the extractor."""
        if self._gateway.configured(FAMILY):
            model = self._gateway.settings(FAMILY)
            return {"provider": model.provider, "model": model.model}
        return {"provider": self._llm.name, "model": self._llm.model}

    def _cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the process pool (its exceptions re-raised here), or in this thread.

        Raises:
            ApplicationError: (retryable) the pool is broken: a child process died (out of
                memory, a native crash). It is the worker's fault, never the document's.
        """
        if self._pool is None:
            return fn(*args)
        try:
            return self._pool.submit(fn, *args).result()
        except BrokenProcessPool as broken:
            raise error(
                ErrorClass.INTERNAL,
                f"the worker's process pool is broken ({broken}); retried, restart the worker if it persists",
            ) from None

    def _read(self, path_text: str) -> tuple[Path, bytes]:
        resolved = self._settings.resolve(path_text)
        if not resolved.is_file():
            raise validation_error("file not found", field=path_text)
        size = resolved.stat().st_size
        if size == 0:
            raise validation_error("empty file", field=path_text)
        if size > self._settings.max_bytes:
            raise validation_error(f"{size} bytes is over the limit of {self._settings.max_bytes}", field=path_text)
        return resolved, resolved.read_bytes()

    @activity.defn
    def resolve_document(self, path: str) -> str:
        """The document's real absolute path (relative paths start at the first root).

        Its id, and so its workflow id, derive from this path: one file, one id, however
        it was named (``..``, a symlink, a relative path).
        """
        resolved = self._settings.resolve(path)
        if not resolved.is_file():
            raise validation_error("file not found", field=path)
        return str(resolved)

    @activity.defn
    def validate_document(self, request: ValidateInput) -> DocumentRef:
        """Check the document can be processed and claim its row for this run (PROCESSING)."""
        with keep_alive():
            document_id = document_id_for(request.path)
            path, data = self._read(request.path)
            fmt = detect_format(path, data, self._settings)
            if fmt == "pdf":
                open_pdf(path, data, self._settings).close()
            elif fmt == "docx":
                open_docx(path, data)
            content_hash = hashlib.sha256(data).hexdigest()
            rows_key = version_key(content_hash, request.chunk_size, request.chunk_overlap)
            with database_errors(), self._db.transaction() as session:
                # Concepts of this version stored by any earlier run: they are the result.
                stored = session.scalar(
                    select(func.count()).select_from(ConceptRow).where(*rows_of(ConceptRow, document_id, rows_key))
                )
                row = session.get(DocumentRow, document_id, with_for_update=True)
                row = row or DocumentRow(document_id=document_id, path=request.path)
                row.status, row.error_class, row.error_message = "PROCESSING", None, None
                row.run_key = request.run_key
                row.content_hash, row.format, row.size_bytes = content_hash, fmt, len(data)
                session.merge(row)
        return DocumentRef(
            document_id=document_id,
            path=request.path,
            content_hash=content_hash,
            format=fmt,
            size_bytes=len(data),
            already_completed=bool(stored),
            version=rows_key,
        )

    @activity.defn
    def chunk_document(self, request: ChunkInput) -> ChunkSummary:
        """Parse the document and store its chunks; return only their count."""
        with keep_alive():
            return self._chunk(request)

    def _chunk(self, request: ChunkInput) -> ChunkSummary:
        doc = request.document
        path, data = self._read(doc.path)
        if hashlib.sha256(data).hexdigest() != doc.content_hash:
            raise validation_error("the file changed while it was being processed; submit it again", field=doc.path)
        try:
            text = self._cpu(parse_text, path, data, doc.format, self._settings)
        except ApplicationError:
            raise
        except Exception as err:
            raise error(
                ErrorClass.PROCESSING, f"{doc.path}: cannot parse {doc.format}: {err}", non_retryable=True
            ) from err
        chunks = self._cpu(split_text, text, request.chunk_size, request.chunk_overlap)
        if not chunks:
            raise validation_error(f"no text found in this {doc.format}", field=doc.path)
        with database_errors(), self._db.transaction() as session:
            stored = set(
                session.scalars(select(ChunkRow.chunk_index).where(*rows_of(ChunkRow, doc.document_id, doc.rows_key)))
            )
            session.add_all(
                ChunkRow(
                    document_id=doc.document_id,
                    content_hash=doc.rows_key,
                    chunk_index=index,
                    text=chunk,
                    run_key=request.run_key,
                )
                for index, chunk in enumerate(chunks)
                if index not in stored
            )
        activity.logger.info("Chunked", extra={"key": doc.document_id, "reference": f"{len(chunks)} chunks"})
        return ChunkSummary(chunk_count=len(chunks), char_count=len(text))

    @activity.defn
    def extract_concepts(self, request: ExtractInput) -> ExtractSummary:
        """Ask the LLM for the concepts of ``request.chunk_count`` chunks, one after another,
        and store each chunk's as soon as it has them.

        A chunk this run already stored (an attempt of this activity that failed on a later
        chunk) is not asked again. A chunk whose mentions another run stored (an earlier
        run of this very version) keeps them: this run neither replaces nor, should it fail,
        removes them.
        """
        info = activity.info()
        # The heartbeats carry (chunk, the attempt that first asked for it): each chunk gets
        # the model's attempts of its own (attempts_since), even after earlier chunks failed.
        last = info.heartbeat_details
        resumed = (last[0], last[1]) if len(last) == 2 and all(isinstance(d, int) for d in last) else None
        progress = [request.chunk_index, info.attempt]
        concepts = 0
        fallbacks: list[str] = []
        with keep_alive(details=lambda: progress):
            for index in range(request.chunk_index, request.chunk_index + request.chunk_count):
                progress[:] = [index, resumed[1] if resumed is not None and resumed[0] == index else info.attempt]
                activity.heartbeat(*progress)
                with attempts_since(progress[1]):
                    count, fallback = self._extract_chunk(request, index)
                concepts += count
                if fallback is not None:
                    fallbacks.append(f"chunk {index}: {fallback}")
        return ExtractSummary(
            concept_count=concepts, chunk_count=request.chunk_count, fallback="; ".join(fallbacks)[:2000] or None
        )

    def _extract_chunk(self, request: ExtractInput, index: int) -> tuple[int, str | None]:
        """Extract and store chunk ``index``'s concepts; return how many it has, and why the
        fallback extractor answered instead of the configured model (None: it did not)."""
        of_chunk = (*rows_of(MentionRow, request.document_id, request.content_hash), MentionRow.chunk_index == index)
        with database_errors(), self._db.transaction() as session:
            chunk = session.get(ChunkRow, (request.document_id, request.content_hash, index))
            stored: dict[str, int] = {
                run_key: count
                for run_key, count in session.execute(
                    select(MentionRow.run_key, func.count()).where(*of_chunk).group_by(MentionRow.run_key)
                )
            }
        if chunk is None:
            raise error(ErrorClass.PROCESSING, f"chunk {index} of {request.document_id} is missing", non_retryable=True)
        if stored:
            return stored.get(request.run_key) or sum(stored.values()), None
        text = chunk.text
        try:
            with bugs_retried(final_after=FAILED_CALL_ATTEMPTS):
                answer = self._gateway.ask(
                    FAMILY,
                    CONCEPT_PROMPT + text,
                    parse=ConceptList.model_validate_json,
                    fallback=lambda: self._llm.extract_concepts(text),
                    max_tokens=CONCEPT_MAX_TOKENS,
                    json_mode=True,
                )
                concepts = answer.value.concepts
        except ApplicationError as err:
            # Name the chunk: an activity takes several, and only this one failed.
            raise ApplicationError(
                f"chunk {index}: {err.message}",
                *err.details,
                type=err.type,
                non_retryable=err.non_retryable,
                next_retry_delay=err.next_retry_delay,
                category=err.category,
            ) from err
        unique = {c.name.strip().lower(): c for c in reversed(concepts)}  # first mention wins
        with database_errors(), self._db.transaction() as session:
            session.execute(delete(MentionRow).where(*of_chunk, MentionRow.run_key == request.run_key))
            session.add_all(
                MentionRow(
                    document_id=request.document_id,
                    content_hash=request.content_hash,
                    chunk_index=index,
                    name=name[:MAX_NAME],
                    kind=c.kind,
                    salience=c.salience,
                    run_key=request.run_key,
                )
                for name, c in unique.items()
            )
        return len(unique), answer.fallback

    @activity.defn
    def store_concepts(self, request: StoreInput) -> DocumentResult:
        """Merge the mentions into the document's concepts and record the version as complete."""
        doc = request.document
        provider = self._provider()
        with keep_alive(), database_errors(), self._db.transaction() as session:
            if not session.scalar(
                select(func.count()).select_from(ConceptRow).where(*rows_of(ConceptRow, doc.document_id, doc.rows_key))
            ):
                session.add_all(self._merge_mentions(session, doc, request.run_key, provider))
            row = session.get(DocumentRow, doc.document_id, with_for_update=True)
            assert row is not None, "validate_document writes the row"
            if not doc.version:
                row.status = "COMPLETED"  # a run recorded before finalise_document existed
            row.completed_hash = doc.content_hash
            row.provider, row.model = provider["provider"], provider["model"]
        return self.document_result(doc)

    def _merge_mentions(
        self, session: Session, doc: DocumentRef, run_key: str, provider: dict[str, str]
    ) -> list[ConceptRow]:
        chunk_count = (
            session.scalar(
                select(func.count()).select_from(ChunkRow).where(*rows_of(ChunkRow, doc.document_id, doc.rows_key))
            )
            or 0
        )
        mentions = session.execute(
            select(MentionRow.name, MentionRow.kind, MentionRow.salience, MentionRow.chunk_index)
            .where(*rows_of(MentionRow, doc.document_id, doc.rows_key))
            .order_by(MentionRow.chunk_index)
        )
        return [
            ConceptRow(
                document_id=doc.document_id,
                content_hash=doc.rows_key,
                name=evidence.name[:MAX_NAME],
                kind=evidence.kind,
                salience=score,
                mentions=len(evidence.chunks),
                evidence_chunk=evidence.best_chunk,
                provider=provider,
                run_key=run_key,
            )
            for evidence, score in rank_concepts(
                ((m.name, m.kind, m.salience, m.chunk_index) for m in mentions), chunk_count
            )
        ]

    @activity.defn
    def document_result(self, doc: DocumentRef) -> DocumentResult:
        """The stored result of a processed document version (read only)."""
        with keep_alive(), database_errors(), self._db.transaction() as session:
            version = rows_of(ConceptRow, doc.document_id, doc.rows_key)
            total = session.scalar(select(func.count()).select_from(ConceptRow).where(*version)) or 0
            top = session.scalars(
                select(ConceptRow)
                .where(*version)
                .order_by(ConceptRow.salience.desc(), ConceptRow.name)
                .limit(TOP_CONCEPTS)
            ).all()
            chunks = session.scalar(
                select(func.count()).select_from(ChunkRow).where(*rows_of(ChunkRow, doc.document_id, doc.rows_key))
            )
        provider = top[0].provider if top else self._provider()
        return DocumentResult(
            document_id=doc.document_id,
            path=doc.path,
            content_hash=doc.content_hash,
            format=doc.format,
            chunk_count=chunks or 0,
            concept_count=total,
            provider=provider["provider"],
            model=provider["model"],
            # The backend only: the history must not carry a database's user, host or file.
            stored_in=f"the worker's {self._db.engine.dialect.name} database "
            "(tables documents, document_chunks, concept_mentions, concepts)",
            top_concepts=[
                StoredConcept(
                    name=c.name, kind=c.kind, salience=c.salience, mentions=c.mentions, evidence_chunk=c.evidence_chunk
                )
                for c in top
            ],
            reused=doc.already_completed,
            version=doc.rows_key,
        )

    def _discard(self, session: Session, document_id: str, rows_key: str, run_key: str) -> int:
        removed = 0
        for table in VERSION_TABLES:
            result = session.execute(
                delete(table).where(*rows_of(table, document_id, rows_key), table.run_key == run_key)
            )
            removed += result.rowcount  # type: ignore[attr-defined]
        return removed

    @activity.defn
    def finalise_document(self, request: FinaliseInput) -> FinaliseResult:
        """End a run: set the document row's final state and, unless it completed, remove
        the rows this run wrote. The run calls it once, whatever happened (rejected,
        failed, cancelled or completed); it is idempotent.

        A row that another, later run has claimed and still processes is left alone.
        """
        with keep_alive(), database_errors(), self._db.transaction() as session:
            removed = 0
            if request.status != "COMPLETED" and request.rows_key:
                removed = self._discard(session, request.document_id, request.rows_key, request.run_key)
            row = session.get(DocumentRow, request.document_id, with_for_update=True)
            if row is not None and row.run_key not in (None, request.run_key) and row.status == "PROCESSING":
                return FinaliseResult(removed_rows=removed)
            row = row or DocumentRow(document_id=request.document_id, path=request.path)
            row.status, row.run_key = request.status, request.run_key
            row.error_class = request.error_class
            row.error_message = (request.message or "")[:2000] or None
            if request.status == "COMPLETED":
                row.error_class = row.error_message = None
            session.merge(row)
        activity.logger.info(
            "Finalised", extra={"key": request.document_id, "reference": f"{request.status}, {removed} rows removed"}
        )
        return FinaliseResult(removed_rows=removed)
