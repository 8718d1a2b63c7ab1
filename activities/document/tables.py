"""The document family's tables: a row per document, and the rows of each document version.

Rows are keyed by document id + version (``DocumentRef.rows_key``) and tagged with the run
that wrote them, so a re-run of the same content writes nothing twice and a failed run
removes only its own rows: what an earlier run stored is never lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sagaworks import Base
from sagaworks.activities.llm import MAX_NAME


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


def rows_of(
    table: type[ChunkRow] | type[MentionRow] | type[ConceptRow], document_id: str, rows_key: str
) -> tuple[Any, ...]:
    """The filter selecting one document version's rows of a version table."""
    return (table.document_id == document_id, table.content_hash == rows_key)
