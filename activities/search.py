"""BM25 search over the chunks the document pipeline stored, its quality, and query refinement.

The corpus is every chunk of every document version whose concepts are stored
(``documents.completed_hash``). The BM25 index (rank-bm25's Okapi BM25) is built once per
corpus state and reused until a document is added or changes. Quality is measured, not
assumed: coverage of the query's terms by the hits and diversity of their documents.
Refinement is pseudo-relevance feedback: YAKE keyphrases of the best hits join the query.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select
from temporalio import activity

from sagaworks import Database, database_errors, validation_error
from sagaworks.activities.document import ChunkRow, DocumentRow
from sagaworks.activities.text_analysis import STOPWORDS, keywords_of, words
from sagaworks.contracts.search import EvaluateInput, Hit, Quality, RefineInput, SearchHits, SearchInput

COVERAGE_WEIGHT = 0.7
REFINE_TERMS = 2
"""Keyphrases added to the query per refinement."""
HIT_TEXT_CHARS = 2_000
"""About the most characters of its chunk a hit carries (see :func:`excerpt`). A chunk may
hold 20,000 characters and a round 50 hits, which would make a round's hits (an activity's result, and the run's result
or continue-as-new input) megabytes; the whole chunk stays stored under the hit's document
and chunk index."""


def excerpt(text: str, query_terms: list[str]) -> str:
    """``text`` if at most :data:`HIT_TEXT_CHARS` characters, else its first half of that,
    then the query's terms the rest of it holds, so the hit's coverage of the query
    (:func:`quality_of`) is the whole chunk's."""
    if len(text) <= HIT_TEXT_CHARS:
        return text
    head = text[: HIT_TEXT_CHARS // 2]
    seen, held = set(terms(head)), set(terms(text))
    rest = [t for t in dict.fromkeys(query_terms) if t not in seen and t in held]
    return f"{head} … {' '.join(rest)}" if rest else head


def terms(text: str) -> list[str]:
    """The searchable terms of a text: lower-cased words, stopwords dropped."""
    return [w for w in words(text) if w not in STOPWORDS]


def quality_of(query: str, hits: list[Hit]) -> Quality:
    """Coverage of the query's terms by the hits, and the diversity of their documents."""
    wanted = list(dict.fromkeys(terms(query)))
    found = set().union(*(terms(h.text) for h in hits)) if hits else set()
    missing = [t for t in wanted if t not in found]
    coverage = (len(wanted) - len(missing)) / len(wanted) if wanted else 0.0
    diversity = len({h.document_id for h in hits}) / len(hits) if hits else 0.0
    score = COVERAGE_WEIGHT * coverage + (1 - COVERAGE_WEIGHT) * diversity
    return Quality(
        score=round(score, 4), coverage=round(coverage, 4), diversity=round(diversity, 4), missing_terms=missing
    )


def refined_query(request: RefineInput) -> str:
    """The current query plus the best hits' keyphrases it lacks (at most two per round)."""
    present = set(terms(request.current))
    text = " ".join(h.text for h in request.hits[:3])
    added: list[str] = []
    for phrase in keywords_of(text, top=12).keywords if text else []:
        new = [t for t in terms(phrase) if t not in present]
        if new:
            added.append(" ".join(new))
            present.update(new)
        if len(added) == REFINE_TERMS:
            break
    return " ".join([request.current, *added])


def _rows_key(session: Any, document_id: str, content_hash: str) -> str | None:
    """The chunk rows of a completed version: keyed by its content hash alone (runs before
    chunk sizes were part of the key) or by ``contracts.document.version_key`` (the hash's
    first 40 characters, the chunk size and the overlap); of several chunkings of one
    content, one (the largest key) is searched."""
    keys = session.scalars(
        select(ChunkRow.content_hash)
        .where(
            ChunkRow.document_id == document_id,
            (ChunkRow.content_hash == content_hash) | ChunkRow.content_hash.startswith(f"{content_hash[:40]}/"),
        )
        .distinct()
    ).all()
    return max(keys, default=None)


class SearchActivities:
    """Search bound to the application database; the index is cached per corpus state."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        # rank_bm25 ships no type hints: its BM25Okapi index is typed Any.
        self._index: tuple[frozenset[tuple[str, str]], list[ChunkRow], Any] | None = None

    def _corpus(self) -> tuple[list[ChunkRow], dict[str, str], Any]:
        """The stored chunks, the paths by document id and the BM25Okapi index of the chunks."""
        with database_errors(), self._db.transaction() as session:
            versions = session.execute(
                select(DocumentRow.document_id, DocumentRow.completed_hash, DocumentRow.path).where(
                    DocumentRow.completed_hash.is_not(None)
                )
            ).all()
            # Every hash is set (the query asks for completed versions only); the check says so to the type checker.
            completed = [(d, h, p) for d, h, p in versions if h is not None]
            state = frozenset((d, h) for d, h, _ in completed)
            paths = {d: p for d, _, p in completed}
            with self._lock:
                if self._index is not None and self._index[0] == state:
                    return self._index[1], paths, self._index[2]
            chunks: list[ChunkRow] = []
            for document_id, content_hash, _ in sorted(completed):
                rows_key = _rows_key(session, document_id, content_hash)
                if rows_key is None:  # no chunk rows stored for this version
                    continue
                chunks.extend(
                    session.scalars(
                        select(ChunkRow)
                        .where(ChunkRow.document_id == document_id, ChunkRow.content_hash == rows_key)
                        .order_by(ChunkRow.chunk_index)
                    )
                )
        if not chunks:
            raise validation_error("no stored documents to search: run the document pipeline first")
        from rank_bm25 import BM25Okapi

        index = BM25Okapi([terms(c.text) or ["\x00"] for c in chunks])
        with self._lock:
            self._index = (state, chunks, index)
        return chunks, paths, index

    @activity.defn
    def search_chunks(self, request: SearchInput) -> SearchHits:
        """The ``top_k`` chunks with the highest BM25 score for the query (score > 0)."""
        query_terms = terms(request.query)
        if not query_terms:
            raise validation_error("no searchable words (only stopwords or none)", field="query")
        chunks, paths, index = self._corpus()
        scores = index.get_scores(query_terms)
        ranked = sorted(range(len(chunks)), key=lambda i: (-scores[i], i))[: request.top_k]
        return SearchHits(
            query=request.query,
            hits=[
                Hit(
                    document_id=chunks[i].document_id,
                    path=paths[chunks[i].document_id],
                    chunk_index=chunks[i].chunk_index,
                    score=round(float(scores[i]), 4),
                    text=excerpt(chunks[i].text, query_terms),
                )
                for i in ranked
                if scores[i] > 0
            ],
            corpus_chunks=len(chunks),
        )

    @activity.defn
    def evaluate_hits(self, request: EvaluateInput) -> Quality:
        """Measured quality of the hits for the original query."""
        return quality_of(request.query, request.hits)

    @activity.defn
    def refine_query(self, request: RefineInput) -> str:
        """The query for the next round."""
        return refined_query(request)
