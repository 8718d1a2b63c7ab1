"""Document activities: validate, parse and chunk, extract concepts, store, discard.

Rows are keyed by document id + content hash (a document version) and tagged with the
run that wrote them, so a re-run of the same content writes nothing twice and a failed
run removes only its own rows: what an earlier run stored is never lost.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sagaworks.activities.db import Base, Database
from sagaworks.activities.errors import ErrorClass, attempts_since, bugs_retried, database_errors, error, validation_error
from sagaworks.activities.liveness import keep_alive
from sagaworks.activities.llm import FAILED_CALL_ATTEMPTS, MAX_NAME, LLMProvider
from sagaworks.contracts.documents import (
    ChunkInput,
    ChunkSummary,
    DiscardInput,
    DocumentFormat,
    DocumentRef,
    DocumentResult,
    ExtractInput,
    ExtractSummary,
    FailureRecord,
    FinaliseInput,
    FinaliseResult,
    LISTING_PAGE_BYTES,
    ListingPage,
    MAX_BATCH_DOCUMENTS,
    MAX_FOLDER_DEPTH,
    StoredConcept,
    StoredListing,
    StoreInput,
    ValidateInput,
    document_id_for,
    version_key,
)

T = TypeVar("T")

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
    """The content hash of the last version whose concepts were stored."""
    run_key: Mapped[str | None] = mapped_column(String(300))
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, onupdate=_utcnow)


# The version tables key rows by document id and ``content_hash``, which holds the version's
# rows key (``DocumentRef.rows_key``: the content hash with the chunk size and overlap).


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
    name: Mapped[str] = mapped_column(String(MAX_NAME), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    salience: Mapped[float] = mapped_column(Float)
    run_key: Mapped[str] = mapped_column(String(300), index=True)


class ConceptRow(Base):
    """A document version's concept: its mentions merged, with its best evidence chunk."""

    __tablename__ = "concepts"
    document_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    salience: Mapped[float] = mapped_column(Float)
    mentions: Mapped[int] = mapped_column(Integer)
    evidence_chunk: Mapped[int] = mapped_column(Integer)
    provider: Mapped[dict[str, str]] = mapped_column(JSON)
    run_key: Mapped[str] = mapped_column(String(300), index=True)


VERSION_TABLES = (ChunkRow, MentionRow, ConceptRow)


class ListingRow(Base):
    """One path of a batch's folder listing (claim check: the batch carries the listing's id
    and how far it got, never the paths). A listing's id is its batch's workflow id, so a
    folder keeps one listing, replaced by its next batch."""

    __tablename__ = "batch_listings"
    listing: Mapped[str] = mapped_column(String(300), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(4096))


DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "samples" / "documents"
"""The document root when none is configured: the demo's samples, nothing else."""


def roots_from_env(variable: str, default: Path) -> tuple[Path, ...]:
    """The folders ``variable`` lists (os.pathsep-separated), resolved; ``default`` when unset."""
    raw = os.environ.get(variable)
    paths = [p for p in raw.split(os.pathsep) if p] if raw else [str(default)]
    return tuple(Path(p).resolve() for p in paths)


def _roots_from_env() -> tuple[Path, ...]:
    return roots_from_env("SAGAWORKS_DOCUMENT_ROOTS", DEFAULT_ROOT)


@dataclass(frozen=True)
class DocumentSettings:
    """Limits of the document activities (environment variables in parentheses)."""

    roots: tuple[Path, ...] = field(default_factory=_roots_from_env)
    """Folders documents may be read from (``SAGAWORKS_DOCUMENT_ROOTS``, os.pathsep-separated;
    default ``samples/documents``, the demo's). Symlinks are resolved before the check; a
    relative path is relative to the first root."""
    max_bytes: int = field(default_factory=lambda: int(os.environ.get("SAGAWORKS_MAX_DOCUMENT_BYTES", 25 * 2**20)))
    """Largest document accepted (``SAGAWORKS_MAX_DOCUMENT_BYTES``, default 25 MiB)."""
    max_pdf_pages: int = 5_000
    max_unzipped_bytes: int = 200 * 2**20
    """Largest total a .docx may unpack to: refuses zip bombs."""

    def describe_roots(self) -> str:
        """The roots in force, as a rejection or the worker's start message names them."""
        source = "SAGAWORKS_DOCUMENT_ROOTS" if os.environ.get("SAGAWORKS_DOCUMENT_ROOTS") else "default"
        return f"{os.pathsep.join(map(str, self.roots))} (this worker's document roots, {source})"

    def resolve(self, path_text: str) -> Path:
        """The real path of ``path_text`` (relative: to the first root), checked to lie under a root.

        Raises a validation error naming the path and the roots in force.
        """
        path = Path(path_text)
        if not path.is_absolute():
            path = self.roots[0] / path
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise validation_error(f"outside the allowed document roots: {self.describe_roots()}", field=path_text)
        return resolved


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


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html"))


def decode_text(path: Path, data: bytes, html: bool) -> str:
    """The text of a text document: a BOM decides, then (HTML only) a declared charset, else UTF-8.

    Raises a validation error naming the encoding the bytes do not follow.
    """
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    if encoding is None and html:
        declared = _DECLARED_CHARSET.search(data[:4096])
        if declared:
            encoding = declared.group(1).decode("ascii")
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise validation_error(f"unknown charset {encoding!r} declared", field=str(path)) from None
    encoding = encoding or "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        hint = "" if html else " (plain text must be UTF-8, or UTF-16 with a BOM)"
        raise validation_error(f"undecodable text: not {encoding} at byte {err.start}{hint}", field=str(path)) from None


def _text_format(path: Path, data: bytes, declared: DocumentFormat | None) -> DocumentFormat:
    import filetype

    kind = filetype.guess(data)
    if kind is not None:
        raise validation_error(f"unsupported type {kind.mime}", field=str(path))
    is_utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in data and not is_utf16:
        raise validation_error("unsupported type: binary data (NUL bytes)", field=str(path))
    html = declared == "html" or _looks_like_html(data)
    text = decode_text(path, data, html)
    head = text.lstrip()[:512].lower()
    if head.startswith(("<!doctype html", "<html")) or (declared == "html" and "<" in head):
        return "html"
    return declared if declared in ("txt", "md") else "txt"


def parse_text(path: Path, data: bytes, fmt: DocumentFormat, settings: DocumentSettings) -> str:
    """The plain text of a validated document.

    Memory stays near the size of the text: PDF pages are read one at a time and HTML is
    parsed as a stream of events, never as a tree.
    """
    if fmt == "pdf":
        return _pdf_text(path, data, settings)
    if fmt == "docx":
        document = _open_docx(path, data)
        return "\n\n".join(p.text for p in document.paragraphs if p.text.strip())
    text = decode_text(path, data, html=fmt == "html")
    return html_text(text) if fmt == "html" else text


def _open_docx(path: Path, data: bytes):  # -> docx.document.Document
    """Open a .docx; whatever the library cannot read is the file's fault, said as such."""
    import docx

    try:
        return docx.Document(io.BytesIO(data))
    except Exception as err:  # python-docx raises lxml, zipfile, KeyError... for a broken file
        raise validation_error(f"corrupt .docx: {type(err).__name__}: {err}"[:500], field=str(path)) from None


class _HtmlText:
    """An lxml parser target keeping the text outside scripts and styles, a line per block."""

    SKIPPED = frozenset({"script", "style", "noscript", "template"})
    BLOCKS = frozenset({
        "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section",
        "article", "table", "ul", "ol", "dl", "dt", "dd", "blockquote", "title", "td", "th",
    })

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._skipping = 0

    def start(self, tag: str, _attrib: dict[str, str]) -> None:
        if tag in self.SKIPPED:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def end(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def data(self, text: str) -> None:
        if not self._skipping:
            self.parts.append(text)

    def comment(self, _text: str) -> None:
        pass

    def close(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return "\n".join(line for line in lines if line)


def html_text(text: str, feed_chars: int = 1 << 16) -> str:
    """The visible text of an HTML page, parsed as a stream (no tree is built)."""
    from lxml import etree

    parser = etree.HTMLParser(target=_HtmlText(), recover=True, no_network=True)
    for start in range(0, len(text), feed_chars):
        parser.feed(text[start : start + feed_chars])
    return parser.close()


def _open_pdf(path: Path, data: bytes, settings: DocumentSettings):  # -> pypdfium2.PdfDocument
    """Open a PDF as any viewer would (the empty user password first), checked against the limits."""
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as err:
        if getattr(err, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise validation_error(
                "encrypted PDF: it needs a password to open; remove the password and submit it again", field=str(path)
            ) from None
        raise validation_error(f"corrupt PDF: {err}", field=str(path)) from None
    pages = len(pdf)
    if pages > settings.max_pdf_pages:
        pdf.close()
        raise validation_error(f"PDF has {pages} pages (limit {settings.max_pdf_pages})", field=str(path))
    return pdf


def _pdf_text(path: Path, data: bytes, settings: DocumentSettings) -> str:
    import pypdfium2.raw as pdfium_c

    pdf = _open_pdf(path, data, settings)
    texts: list[str] = []
    images = 0
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            if not texts[-1].strip():
                images += sum(1 for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2))
            textpage.close()
            page.close()
    finally:
        pdf.close()
    text = "\n\n".join(texts)
    if not text.strip() and images:
        raise validation_error(
            f"this PDF holds images only ({images} on {len(texts)} pages, a scan?): it needs OCR, "
            "which sagaworks does not do; submit a PDF with a text layer",
            field=str(path),
        )
    return text


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


def _rows_of(table: type[ChunkRow] | type[MentionRow] | type[ConceptRow], document_id: str, rows_key: str) -> tuple[Any, ...]:
    """The filter selecting one document version's rows of a version table."""
    return (table.document_id == document_id, table.content_hash == rows_key)


def concept_key(name: str) -> str:
    """What makes two concept names one concept: case, spacing and a plural ``s`` aside."""
    words = name.lower().split()
    if words:
        last = words[-1]
        if len(last) > 4 and last.endswith("ies"):
            words[-1] = last[:-3] + "y"
        elif len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is")):
            words[-1] = last[:-1]
    return " ".join(words)


@dataclass
class _Evidence:
    """Everything a document says about one concept (its mentions across chunks)."""

    name: str
    kind: str
    chunks: set[int] = field(default_factory=set)
    best: float = 0.0
    best_chunk: int = 0
    total: float = 0.0
    mentions: int = 0

    def add(self, name: str, salience: float, chunk: int) -> None:
        self.mentions += 1
        self.total += salience
        self.chunks.add(chunk)
        if salience > self.best:
            self.best, self.best_chunk = salience, chunk
        if len(name) < len(self.name):
            self.name = name  # the shortest spelling (the singular, usually) names the concept

    def absorb(self, other: _Evidence) -> None:
        self.mentions += other.mentions
        self.total += other.total
        self.chunks |= other.chunks
        if other.best > self.best:
            self.best, self.best_chunk = other.best, other.best_chunk

    def score(self, chunk_count: int) -> float:
        """Evidence across the document: spread over its chunks, frequency, best score.

        A concept found once with a high score ranks below one found in many chunks, so a
        long document's top concepts are what it keeps talking about.
        """
        spread = len(self.chunks) / max(chunk_count, 1)
        frequency = math.log1p(self.mentions) / math.log1p(max(chunk_count, 1))
        mean = self.total / self.mentions
        return round(0.45 * spread + 0.2 * min(frequency, 1.0) + 0.2 * self.best + 0.15 * mean, 4)


def rank_concepts(mentions: Iterable[tuple[str, str, float, int]], chunk_count: int) -> list[tuple[_Evidence, float]]:
    """Merge mentions (name, kind, salience, chunk) into concepts, best evidence first.

    Singular and plural spellings are one concept. Pieces of one longer name are folded
    into it when they never occur outside its chunks: a sub-phrase ("general public"
    inside "gnu general public license"), and two phrases that overlap by two words or more
    ("gnu general public" + "general public licenses" = "gnu general public licenses").
    """
    merged: dict[str, _Evidence] = {}
    for name, kind, salience, chunk in mentions:
        evidence = merged.setdefault(concept_key(name), _Evidence(name=name, kind=kind))
        evidence.add(name, salience, chunk)
    _join_overlapping(merged)
    _fold_sub_phrases(merged)
    ranked = [(evidence, evidence.score(chunk_count)) for evidence in merged.values()]
    return sorted(ranked, key=lambda pair: (-pair[1], -pair[0].best, pair[0].name))


def _join_overlapping(merged: dict[str, _Evidence]) -> None:
    by_start: dict[tuple[str, ...], list[str]] = {}
    for key in merged:
        words = tuple(key.split())
        if len(words) >= 2:
            by_start.setdefault(words[:2], []).append(key)
    pairs = []
    for left in merged:
        words = left.split()
        for overlap in range(2, len(words)):
            tail = words[-overlap:]
            for right in by_start.get(tuple(tail[:2]), []):
                right_words = right.split()
                if right != left and len(right_words) > overlap and right_words[:overlap] == tail:
                    pairs.append((left, right, overlap))
    # Strongest evidence first: the pair both of whose phrases occur most.
    pairs.sort(key=lambda p: (-min(len(merged[p[0]].chunks), len(merged[p[1]].chunks)), p[0], p[1]))
    for left, right, overlap in pairs:
        if left not in merged or right not in merged:
            continue
        small, large = sorted((merged[left], merged[right]), key=lambda e: len(e.chunks))
        # One name cut in two: each piece occurs where the other does.
        if not (small.chunks <= large.chunks and 2 * len(small.chunks) >= len(large.chunks)):
            continue
        name = " ".join(merged[left].name.split() + merged[right].name.split()[overlap:])
        joined = merged.pop(left)
        joined.absorb(merged.pop(right))
        joined.name = name
        key = concept_key(name)
        if key in merged:
            merged[key].absorb(joined)
        else:
            merged[key] = joined


def _fold_sub_phrases(merged: dict[str, _Evidence]) -> None:
    containing: dict[str, list[str]] = {}
    for key in merged:
        words = key.split()
        for size in range(1, len(words)):
            for start in range(len(words) - size + 1):
                containing.setdefault(" ".join(words[start : start + size]), []).append(key)
    for short in sorted(merged, key=lambda k: (len(k.split()), k)):
        longer = [k for k in containing.get(short, []) if k in merged and k != short]
        target = next((k for k in sorted(longer, key=len, reverse=True) if merged[short].chunks <= merged[k].chunks), None)
        if target is not None:
            merged[target].absorb(merged.pop(short))


class DocumentActivities:
    """The document pipeline's activities, bound to a database and an LLM provider."""

    def __init__(
        self, db: Database, llm: LLMProvider, settings: DocumentSettings | None = None, cpu_pool: Executor | None = None
    ) -> None:
        """Serve the activities from ``db`` with ``llm``; ``settings`` default from the environment.

        ``cpu_pool`` (the worker's process pool) parses and splits documents, which holds
        the GIL for seconds on a large one; None does it in the activity's thread.
        """
        self._db = db
        self._llm = llm
        self._settings = settings or DocumentSettings()
        self._pool = cpu_pool

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
                _open_pdf(path, data, self._settings).close()
            elif fmt == "docx":
                _open_docx(path, data)
            content_hash = hashlib.sha256(data).hexdigest()
            rows_key = version_key(content_hash, request.chunk_size, request.chunk_overlap)
            with database_errors(), self._db.transaction() as session:
                # Concepts of this version stored by any earlier run: they are the result.
                stored = session.scalar(
                    select(func.count()).select_from(ConceptRow).where(*_rows_of(ConceptRow, document_id, rows_key))
                )
                row = session.get(DocumentRow, document_id, with_for_update=True)
                row = row or DocumentRow(document_id=document_id, path=request.path)
                row.status, row.error_class, row.error_message = "PROCESSING", None, None
                row.run_key = request.run_key
                row.content_hash, row.format, row.size_bytes = content_hash, fmt, len(data)
                session.merge(row)
        return DocumentRef(
            document_id=document_id, path=request.path, content_hash=content_hash,
            format=fmt, size_bytes=len(data), already_completed=bool(stored), version=rows_key,
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
            raise error(ErrorClass.PROCESSING, f"{doc.path}: cannot parse {doc.format}: {err}", non_retryable=True) from err
        chunks = self._cpu(split_text, text, request.chunk_size, request.chunk_overlap)
        if not chunks:
            raise validation_error(f"no text found in this {doc.format}", field=doc.path)
        with database_errors(), self._db.transaction() as session:
            stored = set(
                session.scalars(select(ChunkRow.chunk_index).where(*_rows_of(ChunkRow, doc.document_id, doc.rows_key)))
            )
            session.add_all(
                ChunkRow(
                    document_id=doc.document_id, content_hash=doc.rows_key,
                    chunk_index=index, text=chunk, run_key=request.run_key,
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
        with keep_alive(details=lambda: progress):
            for index in range(request.chunk_index, request.chunk_index + request.chunk_count):
                progress[:] = [index, resumed[1] if resumed is not None and resumed[0] == index else info.attempt]
                activity.heartbeat(*progress)
                with attempts_since(progress[1]):
                    concepts += self._extract_chunk(request, index)
        return ExtractSummary(concept_count=concepts, chunk_count=request.chunk_count)

    def _extract_chunk(self, request: ExtractInput, index: int) -> int:
        """Extract and store chunk ``index``'s concepts; return how many it has."""
        of_chunk = (*_rows_of(MentionRow, request.document_id, request.content_hash), MentionRow.chunk_index == index)
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
            return stored.get(request.run_key) or sum(stored.values())
        try:
            with bugs_retried(final_after=FAILED_CALL_ATTEMPTS):
                concepts = self._llm.extract_concepts(chunk.text).concepts
        except ApplicationError as err:
            # Name the chunk: an activity takes several, and only this one failed.
            raise ApplicationError(
                f"chunk {index}: {err.message}", *err.details,
                type=err.type, non_retryable=err.non_retryable, next_retry_delay=err.next_retry_delay,
                category=err.category,
            ) from err
        unique = {c.name.strip().lower(): c for c in reversed(concepts)}  # first mention wins
        with database_errors(), self._db.transaction() as session:
            session.execute(delete(MentionRow).where(*of_chunk, MentionRow.run_key == request.run_key))
            session.add_all(
                MentionRow(
                    document_id=request.document_id, content_hash=request.content_hash,
                    chunk_index=index, name=name[:MAX_NAME], kind=c.kind,
                    salience=c.salience, run_key=request.run_key,
                )
                for name, c in unique.items()
            )
        return len(unique)

    @activity.defn
    def store_concepts(self, request: StoreInput) -> DocumentResult:
        """Merge the mentions into the document's concepts and record the version as complete."""
        doc = request.document
        provider = {"provider": self._llm.name, "model": self._llm.model}
        with keep_alive(), database_errors(), self._db.transaction() as session:
            if not session.scalar(select(func.count()).select_from(ConceptRow).where(*_rows_of(ConceptRow, doc.document_id, doc.rows_key))):
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
        chunk_count = session.scalar(
            select(func.count()).select_from(ChunkRow).where(*_rows_of(ChunkRow, doc.document_id, doc.rows_key))
        ) or 0
        mentions = session.execute(
            select(MentionRow.name, MentionRow.kind, MentionRow.salience, MentionRow.chunk_index).where(
                *_rows_of(MentionRow, doc.document_id, doc.rows_key)
            ).order_by(MentionRow.chunk_index)
        )
        return [
            ConceptRow(
                document_id=doc.document_id, content_hash=doc.rows_key, name=evidence.name[:MAX_NAME],
                kind=evidence.kind, salience=score, mentions=len(evidence.chunks),
                evidence_chunk=evidence.best_chunk, provider=provider, run_key=run_key,
            )
            for evidence, score in rank_concepts(((m.name, m.kind, m.salience, m.chunk_index) for m in mentions), chunk_count)
        ]

    @activity.defn
    def document_result(self, doc: DocumentRef) -> DocumentResult:
        """The stored result of a processed document version (read only)."""
        with keep_alive(), database_errors(), self._db.transaction() as session:
            version = _rows_of(ConceptRow, doc.document_id, doc.rows_key)
            total = session.scalar(select(func.count()).select_from(ConceptRow).where(*version)) or 0
            top = session.scalars(
                select(ConceptRow).where(*version).order_by(ConceptRow.salience.desc(), ConceptRow.name).limit(TOP_CONCEPTS)
            ).all()
            chunks = session.scalar(
                select(func.count()).select_from(ChunkRow).where(*_rows_of(ChunkRow, doc.document_id, doc.rows_key))
            )
        provider = top[0].provider if top else {"provider": self._llm.name, "model": self._llm.model}
        return DocumentResult(
            document_id=doc.document_id, path=doc.path, content_hash=doc.content_hash, format=doc.format,
            chunk_count=chunks or 0, concept_count=total, provider=provider["provider"], model=provider["model"],
            # The backend only: the history must not carry a database's user, host or file.
            stored_in=f"the worker's {self._db.engine.dialect.name} database "
            "(tables documents, document_chunks, concept_mentions, concepts)",
            top_concepts=[
                StoredConcept(name=c.name, kind=c.kind, salience=c.salience, mentions=c.mentions, evidence_chunk=c.evidence_chunk)
                for c in top
            ],
            reused=doc.already_completed,
            version=doc.rows_key,
        )

    def _discard(self, session: Session, document_id: str, rows_key: str, run_key: str) -> int:
        removed = 0
        for table in VERSION_TABLES:
            result = session.execute(
                delete(table).where(*_rows_of(table, document_id, rows_key), table.run_key == run_key)
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
        activity.logger.info("Finalised", extra={"key": request.document_id, "reference": f"{request.status}, {removed} rows removed"})
        return FinaliseResult(removed_rows=removed)

    @activity.defn
    def discard_document_run(self, request: DiscardInput) -> int:
        """Compensation of runs recorded before ``finalise_document``: delete this run's rows."""
        with keep_alive(), database_errors(), self._db.transaction() as session:
            removed = self._discard(session, request.document_id, request.content_hash, request.run_key)
            row = session.get(DocumentRow, request.document_id, with_for_update=True)
            if row is not None and row.run_key == request.run_key and row.completed_hash == request.content_hash:
                row.completed_hash = None  # its concepts were just removed: nothing to reuse
        return removed

    @activity.defn
    def record_document_failure(self, failure: FailureRecord) -> None:
        """Runs recorded before ``finalise_document`` end with this: keep why the run failed."""
        with keep_alive(), database_errors(), self._db.transaction() as session:
            row = session.get(DocumentRow, failure.document_id, with_for_update=True)
            if row is not None and row.run_key == failure.run_key and row.status != "REJECTED":
                row.status, row.error_class, row.error_message = failure.status, failure.error_class, failure.message

    @activity.defn
    def list_documents(self, folder: str) -> list[str]:
        """The documents under a folder and its subfolders, sorted, as real absolute paths.

        Walks ``MAX_FOLDER_DEPTH`` levels down; skips hidden entries and symlinked folders;
        refuses a folder of more than ``MAX_BATCH_DOCUMENTS`` documents.
        """
        with keep_alive():
            return self._list(folder)

    @activity.defn
    def store_listing(self, folder: str) -> StoredListing:
        """List the folder as :meth:`list_documents` does and store the paths under the
        calling batch's workflow id (replacing what a retry or an earlier batch of that id
        stored); return the id and the count."""
        listing = activity.info().workflow_id or "(no workflow)"
        with keep_alive():
            paths = self._list(folder)
            with database_errors(), self._db.transaction() as session:
                session.execute(delete(ListingRow).where(ListingRow.listing == listing))
                session.add_all(ListingRow(listing=listing, position=n, path=path) for n, path in enumerate(paths))
        return StoredListing(listing=listing, total=len(paths))

    @activity.defn
    def listing_page(self, page: ListingPage) -> list[str]:
        """Up to ``page.limit`` paths of a stored listing from ``page.offset`` on, at most
        ``LISTING_PAGE_BYTES`` of them (always one, when one is left)."""
        found: list[str] = []
        size = 0
        with keep_alive(), database_errors(), self._db.transaction() as session:
            rows = session.scalars(
                select(ListingRow.path)
                .where(ListingRow.listing == page.listing, ListingRow.position >= page.offset)
                .order_by(ListingRow.position)
                .limit(page.limit)
            )
            for path in rows:
                size += len(path.encode()) + 4
                if found and size > LISTING_PAGE_BYTES:
                    break
                found.append(path)
        return found

    def _list(self, folder: str) -> list[str]:
        resolved = self._settings.resolve(folder)
        if not resolved.is_dir():
            raise validation_error("not a folder", field=folder)
        found: list[str] = []
        for current, dirs, files in os.walk(resolved):
            depth = len(Path(current).relative_to(resolved).parts)
            dirs[:] = [] if depth >= MAX_FOLDER_DEPTH else sorted(d for d in dirs if not d.startswith("."))
            found.extend(str(Path(current) / name) for name in files if not name.startswith("."))
            if len(found) > MAX_BATCH_DOCUMENTS:
                raise validation_error(
                    f"more than {MAX_BATCH_DOCUMENTS} documents: split the folder into several batches", field=folder
                )
        return sorted(found)
