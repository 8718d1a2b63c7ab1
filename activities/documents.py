"""Document activities: validate, parse and chunk, extract concepts, store, discard.

Rows are keyed by document id + content hash (a document version) and tagged with the
run that wrote them, so a re-run of the same content writes nothing twice and a failed
run removes only its own rows: what an earlier run stored is never lost.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import Base, Database
from activities.errors import ErrorClass, database_errors, error, validation_error
from activities.liveness import keep_alive
from activities.llm import LLMProvider
from contracts.documents import (
    ChunkInput,
    ChunkSummary,
    DiscardInput,
    DocumentFormat,
    DocumentRef,
    DocumentResult,
    ExtractInput,
    ExtractSummary,
    FailureRecord,
    StoredConcept,
    StoreInput,
    ValidateInput,
    document_id_for,
)

TOP_CONCEPTS = 20
"""Concepts a result carries; all of them are in the database."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DocumentRow(Base):
    """The latest processing state of a document (one row per path)."""

    __tablename__ = "documents"
    document_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    path: Mapped[str] = mapped_column(String(4096))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    format: Mapped[str | None] = mapped_column(String(8))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    """PROCESSING, COMPLETED, REJECTED, FAILED or CANCELED."""
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    completed_hash: Mapped[str | None] = mapped_column(String(64))
    """The last version whose concepts are stored."""
    run_key: Mapped[str | None] = mapped_column(String(300))
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, onupdate=_utcnow)


class ChunkRow(Base):
    __tablename__ = "document_chunks"
    document_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    run_key: Mapped[str] = mapped_column(String(300), index=True)


class MentionRow(Base):
    """A concept as the model found it in one chunk."""

    __tablename__ = "concept_mentions"
    document_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    salience: Mapped[float] = mapped_column(Float)
    run_key: Mapped[str] = mapped_column(String(300), index=True)


class ConceptRow(Base):
    """A document version's concept: its mentions merged, with its best evidence chunk."""

    __tablename__ = "concepts"
    document_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    salience: Mapped[float] = mapped_column(Float)
    mentions: Mapped[int] = mapped_column(Integer)
    evidence_chunk: Mapped[int] = mapped_column(Integer)
    provider: Mapped[dict[str, str]] = mapped_column(JSON)
    run_key: Mapped[str] = mapped_column(String(300), index=True)


VERSION_TABLES = (ChunkRow, MentionRow, ConceptRow)


def _roots_from_env() -> tuple[Path, ...]:
    raw = os.environ.get("SAGAWORKS_DOCUMENT_ROOTS")
    paths = raw.split(os.pathsep) if raw else [os.getcwd()]
    return tuple(Path(p).resolve() for p in paths if p)


@dataclass(frozen=True)
class DocumentSettings:
    """Limits of the document activities (environment variables in parentheses)."""

    roots: tuple[Path, ...] = field(default_factory=_roots_from_env)
    """Folders documents may be read from (``SAGAWORKS_DOCUMENT_ROOTS``, os.pathsep-separated;
    default the worker's working directory). Symlinks are resolved before the check."""
    max_bytes: int = field(default_factory=lambda: int(os.environ.get("SAGAWORKS_MAX_DOCUMENT_BYTES", 25 * 2**20)))
    """Largest document accepted (``SAGAWORKS_MAX_DOCUMENT_BYTES``, default 25 MiB)."""
    max_pdf_pages: int = 5_000
    max_unzipped_bytes: int = 200 * 2**20
    """Largest total a .docx may unpack to: refuses zip bombs."""


EXTENSIONS: dict[str, DocumentFormat] = {
    ".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md",
    ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx",
}


def detect_format(path: Path, data: bytes, settings: DocumentSettings) -> DocumentFormat:
    """Decide the format from the content, and check it agrees with the extension.

    Raises a validation error naming the file and what is wrong with it.
    """
    declared = EXTENSIONS.get(path.suffix.lower())
    if data.startswith(b"%PDF-"):
        actual: DocumentFormat = "pdf"
    elif data.startswith(b"PK\x03\x04"):
        actual = _check_docx(path, data, settings)
    else:
        actual = _text_format(path, data, declared)
    if declared is None:
        raise validation_error(f"unsupported extension {path.suffix or '(none)'!r} (content looks like {actual})", field=str(path))
    if declared != actual and {declared, actual} != {"txt", "md"}:
        raise validation_error(f"mislabelled: extension {path.suffix} but the content is {actual}", field=str(path))
    return declared if {declared, actual} == {"txt", "md"} else actual


def _check_docx(path: Path, data: bytes, settings: DocumentSettings) -> DocumentFormat:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as err:
        raise validation_error(f"corrupt zip container: {err}", field=str(path)) from None
    if "word/document.xml" not in names:
        raise validation_error("unsupported type: a zip archive that is not a .docx document", field=str(path))
    if unpacked > settings.max_unzipped_bytes:
        raise validation_error(
            f"refused: unpacks to {unpacked} bytes (limit {settings.max_unzipped_bytes}; zip bomb?)", field=str(path)
        )
    return "docx"


def _text_format(path: Path, data: bytes, declared: DocumentFormat | None) -> DocumentFormat:
    import filetype

    kind = filetype.guess(data)
    if kind is not None:
        raise validation_error(f"unsupported type {kind.mime}", field=str(path))
    if b"\x00" in data:
        raise validation_error("unsupported type: binary data (NUL bytes)", field=str(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise validation_error(f"undecodable text: not UTF-8 at byte {err.start}", field=str(path)) from None
    head = text.lstrip()[:512].lower()
    if head.startswith(("<!doctype html", "<html")) or (declared == "html" and "<" in head):
        return "html"
    return declared if declared in ("txt", "md") else "txt"


def parse_text(path: Path, data: bytes, fmt: DocumentFormat, settings: DocumentSettings) -> str:
    """The plain text of a validated document."""
    if fmt == "pdf":
        return "\n\n".join(page.extract_text() or "" for page in _open_pdf(path, data, settings).pages)
    if fmt == "docx":
        import docx

        document = docx.Document(io.BytesIO(data))
        return "\n\n".join(p.text for p in document.paragraphs if p.text.strip())
    text = data.decode("utf-8-sig")
    if fmt == "html":
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(text, "html.parser")
        for tag in soup(["script", "style", "noscript"]):
            tag.decompose()
        return soup.get_text("\n", strip=True)
    return text


def _open_pdf(path: Path, data: bytes, settings: DocumentSettings):  # -> pypdf.PdfReader
    import pypdf
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise validation_error("encrypted PDF: remove the password and submit it again", field=str(path))
        pages = len(reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError) as err:
        raise validation_error(f"corrupt PDF: {err}", field=str(path)) from None
    if pages > settings.max_pdf_pages:
        raise validation_error(f"PDF has {pages} pages (limit {settings.max_pdf_pages})", field=str(path))
    return reader


def split_text(text: str, chunk_size: int, chunk_overlap: int) -> list[str]:
    """Sentence-aware chunks: paragraphs, then lines, then sentences, then words."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size // 2),
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
        keep_separator="end",
    )
    return [chunk for chunk in splitter.split_text(text) if chunk.strip()]


class DocumentActivities:
    """The document pipeline's activities, bound to a database and an LLM provider."""

    def __init__(self, db: Database, llm: LLMProvider, settings: DocumentSettings | None = None) -> None:
        """Serve the activities from ``db`` with ``llm``; ``settings`` default from the environment."""
        self._db = db
        self._llm = llm
        self._settings = settings or DocumentSettings()

    def _read(self, path_text: str) -> tuple[Path, bytes]:
        path = Path(path_text)
        if not path.is_absolute():
            raise validation_error("path must be absolute", field=path_text)
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in self._settings.roots):
            raise validation_error(
                "outside the allowed document roots (SAGAWORKS_DOCUMENT_ROOTS)", field=path_text
            )
        if not resolved.is_file():
            raise validation_error("file not found", field=path_text)
        size = resolved.stat().st_size
        if size == 0:
            raise validation_error("empty file", field=path_text)
        if size > self._settings.max_bytes:
            raise validation_error(f"{size} bytes is over the limit of {self._settings.max_bytes}", field=path_text)
        return resolved, resolved.read_bytes()

    @activity.defn
    def validate_document(self, request: ValidateInput) -> DocumentRef:
        """Check the document can be processed; record it as PROCESSING or REJECTED."""
        document_id = document_id_for(request.path)
        try:
            path, data = self._read(request.path)
            with keep_alive():
                fmt = detect_format(path, data, self._settings)
                if fmt == "pdf":
                    _open_pdf(path, data, self._settings)
        except ApplicationError as err:
            if err.type != ErrorClass.VALIDATION:
                raise
            with database_errors(), self._db.transaction() as session:
                row = session.get(DocumentRow, document_id) or DocumentRow(document_id=document_id, path=request.path)
                row.status, row.error_class, row.error_message = "REJECTED", ErrorClass.VALIDATION, err.message
                row.run_key = request.run_key
                session.merge(row)
            raise
        content_hash = hashlib.sha256(data).hexdigest()
        with database_errors(), self._db.transaction() as session:
            row = session.get(DocumentRow, document_id, with_for_update=True)
            already = row is not None and row.completed_hash == content_hash
            row = row or DocumentRow(document_id=document_id, path=request.path)
            row.status, row.error_class, row.error_message = ("COMPLETED" if already else "PROCESSING"), None, None
            row.run_key = request.run_key
            row.content_hash, row.format, row.size_bytes = content_hash, fmt, len(data)
            session.merge(row)
        return DocumentRef(
            document_id=document_id, path=request.path, content_hash=content_hash,
            format=fmt, size_bytes=len(data), already_completed=already,
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
            text = parse_text(path, data, doc.format, self._settings)
        except ApplicationError:
            raise
        except Exception as err:
            raise error(ErrorClass.PROCESSING, f"{doc.path}: cannot parse {doc.format}: {err}", non_retryable=True) from err
        chunks = split_text(text, request.chunk_size, request.chunk_overlap)
        if not chunks:
            raise validation_error(f"no text found in this {doc.format}", field=doc.path)
        with database_errors(), self._db.transaction() as session:
            stored = set(
                session.scalars(
                    select(ChunkRow.chunk_index).where(
                        ChunkRow.document_id == doc.document_id, ChunkRow.content_hash == doc.content_hash
                    )
                )
            )
            session.add_all(
                ChunkRow(
                    document_id=doc.document_id, content_hash=doc.content_hash,
                    chunk_index=index, text=chunk, run_key=request.run_key,
                )
                for index, chunk in enumerate(chunks)
                if index not in stored
            )
        activity.logger.info("Chunked", extra={"key": doc.document_id, "reference": f"{len(chunks)} chunks"})
        return ChunkSummary(chunk_count=len(chunks), char_count=len(text))

    @activity.defn
    def extract_concepts(self, request: ExtractInput) -> ExtractSummary:
        """Ask the LLM for one chunk's concepts and store them."""
        with database_errors(), self._db.transaction() as session:
            chunk = session.get(ChunkRow, (request.document_id, request.content_hash, request.chunk_index))
        if chunk is None:
            raise error(ErrorClass.PROCESSING, f"chunk {request.chunk_index} of {request.document_id} is missing", non_retryable=True)
        with keep_alive():
            concepts = self._llm.extract_concepts(chunk.text).concepts
        unique = {c.name.strip().lower(): c for c in reversed(concepts)}  # first mention wins
        with database_errors(), self._db.transaction() as session:
            session.execute(
                delete(MentionRow).where(
                    MentionRow.document_id == request.document_id,
                    MentionRow.content_hash == request.content_hash,
                    MentionRow.chunk_index == request.chunk_index,
                )
            )
            session.add_all(
                MentionRow(
                    document_id=request.document_id, content_hash=request.content_hash,
                    chunk_index=request.chunk_index, name=name[:120], kind=c.kind,
                    salience=c.salience, run_key=request.run_key,
                )
                for name, c in unique.items()
            )
        return ExtractSummary(concept_count=len(unique))

    @activity.defn
    def store_concepts(self, request: StoreInput) -> DocumentResult:
        """Merge the mentions into the document's concepts and mark it COMPLETED."""
        doc = request.document
        provider = {"provider": self._llm.name, "model": self._llm.model}
        with database_errors(), self._db.transaction() as session:
            version = (ConceptRow.document_id == doc.document_id, ConceptRow.content_hash == doc.content_hash)
            if not session.scalar(select(func.count()).select_from(ConceptRow).where(*version)):
                session.add_all(self._merge_mentions(session, doc, request.run_key, provider))
            row = session.get(DocumentRow, doc.document_id, with_for_update=True)
            assert row is not None, "validate_document writes the row"
            row.status, row.completed_hash = "COMPLETED", doc.content_hash
            row.provider, row.model = provider["provider"], provider["model"]
        return self.document_result(doc)

    def _merge_mentions(
        self, session: Session, doc: DocumentRef, run_key: str, provider: dict[str, str]
    ) -> list[ConceptRow]:
        merged: dict[str, ConceptRow] = {}
        mentions = session.scalars(
            select(MentionRow).where(
                MentionRow.document_id == doc.document_id, MentionRow.content_hash == doc.content_hash
            ).order_by(MentionRow.chunk_index)
        )
        for mention in mentions:
            concept = merged.get(mention.name)
            if concept is None:
                merged[mention.name] = ConceptRow(
                    document_id=doc.document_id, content_hash=doc.content_hash, name=mention.name,
                    kind=mention.kind, salience=mention.salience, mentions=1,
                    evidence_chunk=mention.chunk_index, provider=provider, run_key=run_key,
                )
                continue
            concept.mentions += 1
            if mention.salience > concept.salience:
                concept.salience, concept.evidence_chunk = mention.salience, mention.chunk_index
        return list(merged.values())

    @activity.defn
    def document_result(self, doc: DocumentRef) -> DocumentResult:
        """The stored result of a processed document version (read only)."""
        with database_errors(), self._db.transaction() as session:
            version = (ConceptRow.document_id == doc.document_id, ConceptRow.content_hash == doc.content_hash)
            total = session.scalar(select(func.count()).select_from(ConceptRow).where(*version)) or 0
            top = session.scalars(
                select(ConceptRow).where(*version).order_by(ConceptRow.salience.desc(), ConceptRow.name).limit(TOP_CONCEPTS)
            ).all()
            chunks = session.scalar(
                select(func.count()).select_from(ChunkRow).where(
                    ChunkRow.document_id == doc.document_id, ChunkRow.content_hash == doc.content_hash
                )
            )
        provider = top[0].provider if top else {"provider": self._llm.name, "model": self._llm.model}
        return DocumentResult(
            document_id=doc.document_id, path=doc.path, content_hash=doc.content_hash, format=doc.format,
            chunk_count=chunks or 0, concept_count=total, provider=provider["provider"], model=provider["model"],
            stored_in=f"{self._db.engine.url.render_as_string(hide_password=True)} "
            "(tables documents, document_chunks, concept_mentions, concepts)",
            top_concepts=[
                StoredConcept(name=c.name, kind=c.kind, salience=c.salience, mentions=c.mentions, evidence_chunk=c.evidence_chunk)
                for c in top
            ],
            reused=doc.already_completed,
        )

    @activity.defn
    def discard_document_run(self, request: DiscardInput) -> int:
        """Compensation: delete the rows this run wrote; return how many."""
        removed = 0
        with database_errors(), self._db.transaction() as session:
            for table in VERSION_TABLES:
                result = session.execute(
                    delete(table).where(
                        table.document_id == request.document_id,
                        table.content_hash == request.content_hash,
                        table.run_key == request.run_key,
                    )
                )
                removed += result.rowcount  # type: ignore[attr-defined]
            row = session.get(DocumentRow, request.document_id, with_for_update=True)
            if row is not None and row.run_key == request.run_key and row.completed_hash == request.content_hash:
                row.completed_hash = None  # its concepts were just removed: nothing to reuse
        activity.logger.info("Run discarded", extra={"key": request.document_id, "reference": f"{removed} rows"})
        return removed

    @activity.defn
    def record_document_failure(self, failure: FailureRecord) -> None:
        """Keep why the run failed on the document's row (its earlier results stay)."""
        with database_errors(), self._db.transaction() as session:
            row = session.get(DocumentRow, failure.document_id, with_for_update=True)
            # Only the run that owns the row may mark it: another run may have completed since.
            if row is not None and row.run_key == failure.run_key and row.status != "REJECTED":
                row.status, row.error_class, row.error_message = failure.status, failure.error_class, failure.message

    @activity.defn
    def list_documents(self, folder: str) -> list[str]:
        """The documents of a folder (not recursive), sorted, as absolute paths."""
        with keep_alive():
            return self._list(folder)

    def _list(self, folder: str) -> list[str]:
        path = Path(folder)
        if not path.is_absolute():
            raise validation_error("folder must be an absolute path", field=folder)
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in self._settings.roots):
            raise validation_error("outside the allowed document roots (SAGAWORKS_DOCUMENT_ROOTS)", field=folder)
        if not resolved.is_dir():
            raise validation_error("not a folder", field=folder)
        return sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
