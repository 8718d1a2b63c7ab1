"""Contracts of the parallel-analysis family: four analyses of one text at once."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sagaworks import ProgressStatus
from sagaworks.contracts.common import StrictModel, Text
from sagaworks.contracts.fallback import BranchOutcome
from sagaworks.contracts.text import AnalysisPart, Keywords, Language, Sentiment, Summary


class ParallelAnalysisInput(StrictModel):
    """Analyse a text: sentiment, keywords, summary and language, concurrently."""

    text: Text = Field(min_length=10, max_length=100_000)
    fail: list[AnalysisPart] = Field(default_factory=list)
    """Offline analyses made to fail (demos and tests of partial results and fallbacks)."""
    provider: Literal["offline", "llm"] = "offline"
    """``llm``: sentiment, keywords and summary by the worker's chat model, each falling
    back to its offline analysis; the language is always detected offline."""


class ParallelAnalysisResult(BaseModel):
    """The combined analyses; a part that failed is None and listed in :attr:`unavailable`."""

    sentiment: Sentiment | None
    keywords: Keywords | None
    summary: Summary | None
    language: Language | None
    parts: dict[str, BranchOutcome]
    partial: bool
    """Some part is missing or came from its fallback."""
    unavailable: list[AnalysisPart]
    fallbacks: list[AnalysisPart]


class ParallelAnalysisStatus(ProgressStatus):
    """``done``/``total`` count the four analyses."""

    finished: list[AnalysisPart]
