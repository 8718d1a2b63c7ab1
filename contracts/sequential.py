"""Contracts of the sequential family: ingest -> process -> analyse -> report."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sagaworks import StepTiming, StrictModel, Text
from sagaworks.contracts.text import Keywords, Sentiment, TextProfile

SequentialStep = Literal["ingest", "process", "analyse", "report"]
SEQUENTIAL_STEPS: tuple[SequentialStep, ...] = ("ingest", "process", "analyse", "report")
MIN_CHARACTERS = 10
"""Shorter input is refused by the ingest step: too little text to analyse."""


class SequentialInput(StrictModel):
    """A text to take through ingest, process, analyse and report, one step after another."""

    text: Text = Field(max_length=100_000)
    """At least 10 characters once stripped; the ingest step refuses less, naming ``text``."""
    step_delay_seconds: float = Field(default=0, ge=0, le=60)
    """A pause before each step (demos and cancellation tests)."""


class IngestResult(BaseModel):
    text: str
    """Whitespace normalised: runs of blanks become one space, paragraphs are kept."""
    characters: int


class ProcessResult(BaseModel):
    profile: TextProfile
    sentences: list[str]


class AnalysisResult(BaseModel):
    keywords: Keywords
    sentiment: Sentiment


class ReportInput(StrictModel):
    steps: list[StepTiming]
    profile: TextProfile
    analysis: AnalysisResult


class SequentialResult(BaseModel):
    report: str
    """The Markdown report: every step's outcome and timing, then the analysis."""
    steps: list[StepTiming]
    profile: TextProfile
    analysis: AnalysisResult
