"""Contracts of BM25 search over stored document chunks and of its quality measure."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sagaworks import StrictData, StrictModel


class SearchInput(StrictModel):
    query: str
    top_k: int = Field(default=5, ge=1, le=50)


class Hit(StrictData):
    """One stored chunk that matched, with its BM25 score.

    Strict, as every model a run's input carries (``IterativeInput.best``): a ``false`` score
    is refused, not read as 0. Its texts are the documents' own, control characters included.
    """

    document_id: str
    path: str
    chunk_index: int
    score: float
    text: str
    """The chunk's text, or of a long chunk an excerpt (``activities.search.excerpt``) that
    holds every query term the chunk holds: the whole chunk stays stored."""


class SearchHits(BaseModel):
    query: str
    hits: list[Hit]
    corpus_chunks: int
    """Chunks searched (every chunk of every completed document version)."""


class EvaluateInput(StrictModel):
    query: str
    """The original query: quality is coverage of its terms, whatever the refinements."""
    hits: list[Hit]


class Quality(StrictData):
    """A measured score in [0, 1]: 0.7 x coverage + 0.3 x diversity."""

    score: float
    coverage: float
    """Share of the query's terms found in at least one hit."""
    diversity: float
    """Distinct documents among the hits, over the hits (1 when every hit is another document)."""
    missing_terms: list[str]


class RefineInput(StrictModel):
    original: str
    current: str
    hits: list[Hit]
    missing_terms: list[str]
