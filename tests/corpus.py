"""Stored documents for the search families' tests, written as the document pipeline
writes them (a completed version and its chunks), without running the pipeline."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sagaworks.activities.db import Database
from sagaworks.activities.document import ChunkRow, DocumentRow, split_text
from sagaworks.contracts.document import document_id_for, version_key
from sagaworks.workflows.catalog import SAMPLES

RESEARCH = sorted((SAMPLES / "research").glob("*.md"))


def store_documents(db: Database, paths: list[Path] = RESEARCH, chunk_size: int = 600) -> int:
    """Store each file as a completed document version; return the number of chunks."""
    count = 0
    with db.transaction() as session:
        for path in paths:
            data = path.read_bytes()
            content_hash = hashlib.sha256(data).hexdigest()
            document_id = document_id_for(str(path))
            session.merge(
                DocumentRow(
                    document_id=document_id,
                    path=str(path),
                    content_hash=content_hash,
                    format="md",
                    size_bytes=len(data),
                    status="COMPLETED",
                    completed_hash=content_hash,
                    run_key="test",
                )
            )
            # Chunk rows are keyed by the content hash with the chunk size and overlap.
            rows_key = version_key(content_hash, chunk_size, 60)
            for index, chunk in enumerate(split_text(data.decode(), chunk_size, 60)):
                session.merge(
                    ChunkRow(
                        document_id=document_id, content_hash=rows_key, chunk_index=index, text=chunk, run_key="test"
                    )
                )
                count += 1
    return count
