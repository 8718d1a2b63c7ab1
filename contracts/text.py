"""Contracts of the text-analysis activities shared by the sequential and parallel families."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from sagaworks.contracts.common import StrictModel

AnalysisPart = Literal["sentiment", "keywords", "summary", "language"]


class TextInput(StrictModel):
    """A text to analyse; ``fail`` makes the named analysis fail (demos and tests only)."""

    text: str
    fail: bool = False


class Sentiment(BaseModel):
    """``compound`` in [-1, 1]; VADER labels by its own +-0.05 thresholds."""

    label: Literal["positive", "negative", "neutral"]
    compound: float
    positive: float | None = None
    """VADER's proportions of positive, neutral and negative words (None from the LLM)."""
    neutral: float | None = None
    negative: float | None = None
    method: str = "vader"
    """``vader`` or ``llm:MODEL``."""


class Keywords(BaseModel):
    keywords: list[str]
    method: str
    """How they were found (``yake`` or the ``frequency`` fallback)."""


class Summary(BaseModel):
    sentences: list[str]
    method: str
    """``textrank`` or the ``lead`` fallback (the first sentences)."""


class Language(BaseModel):
    code: str
    """ISO 639-1 code."""
    confidence: float
    """py3langid's normalised probability of the code."""


class TextProfile(BaseModel):
    """Counts that describe a normalised text."""

    characters: int
    words: int
    sentences: int
    reading_seconds: int
    """At 230 words per minute."""
