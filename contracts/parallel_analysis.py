"""Contracts of the parallel-analysis family: four analyses of one text at once."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sagaworks import BranchOutcome, StepStatus, StrictModel, Text
from sagaworks.contracts.text import AnalysisPart, Keywords, Language, Sentiment, Summary

MODEL_PARTS: tuple[AnalysisPart, ...] = ("sentiment", "keywords", "summary")
"""The parts the family's model analyses when one is configured (the language is always
detected offline: py3langid is better at it than a chat model asked in one line)."""


class ParallelAnalysisInput(StrictModel):
    """Analyse a text: sentiment, keywords, summary and language, concurrently."""

    text: Text = Field(min_length=10, max_length=100_000)
    fail: list[AnalysisPart] = Field(default_factory=list)
    """Offline analyses made to fail (demos and tests of partial results and fallbacks)."""
    provider: Literal["offline", "llm"] = "offline"
    """No longer read: the model analyses sentiment, keywords and summary whenever the
    worker's LLM gateway has one for the family (each part's offline analysis its
    fallback). Kept so inputs that set it (schedules, stored runs) still decode."""


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


class ModelAnalyses(BaseModel):
    """What the family's model answered; a part it did not answer is None."""

    sentiment: Sentiment | None = None
    keywords: Keywords | None = None
    summary: Summary | None = None
    provider: str = "offline"
    """``<provider>:<model>``; ``offline`` when no model is configured."""
    fallbacks: dict[str, str] = {}
    """Part -> why its offline analysis stands in although a model is configured (the
    gateway's breaker open, its budget spent, an unusable answer)."""


class ParallelAnalysisStatus(StepStatus):
    """``done``/``total`` count the four analyses."""

    finished: list[AnalysisPart]
