"""The sequential family's steps: ingest, process, analyse, report."""

from __future__ import annotations

import re

from temporalio import activity

from sagaworks import validation_error
from sagaworks.activities.text_analysis import keywords_of, profile, sentiment_of, split_sentences
from sagaworks.contracts.sequential import (
    MIN_CHARACTERS,
    AnalysisResult,
    IngestResult,
    ProcessResult,
    ReportInput,
)

_BLANKS = re.compile(r"[ \t\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@activity.defn
def ingest_text(text: str) -> IngestResult:
    """Validate and normalise: at least 10 characters, blanks collapsed, paragraphs kept."""
    normalised = _BLANK_LINES.sub("\n\n", _BLANKS.sub(" ", text.replace("\r\n", "\n"))).strip()
    if len(normalised) < MIN_CHARACTERS:
        raise validation_error(
            f"{len(normalised)} characters after stripping blanks; at least {MIN_CHARACTERS} are needed",
            field="text",
        )
    return IngestResult(text=normalised, characters=len(normalised))


@activity.defn
def process_text(text: str) -> ProcessResult:
    """Split into sentences and count characters, words, sentences and reading time."""
    return ProcessResult(profile=profile(text), sentences=split_sentences(text))


@activity.defn
def analyse_text(text: str) -> AnalysisResult:
    """YAKE keywords and VADER sentiment of the text."""
    return AnalysisResult(keywords=keywords_of(text), sentiment=sentiment_of(text))


@activity.defn
def render_report(request: ReportInput) -> str:
    """The Markdown report: each step's outcome and timing as the workflow measured them."""
    lines = ["# Sequential run report", "", "| step | outcome | seconds |", "| --- | --- | ---: |"]
    lines += [f"| {s.step} | {s.outcome} | {s.seconds:.3f} |" for s in request.steps]
    p, a = request.profile, request.analysis
    lines += [
        "",
        f"{p.words} words in {p.sentences} sentences ({p.characters} characters), about {p.reading_seconds} s to read.",
        "",
        f"Sentiment: {a.sentiment.label} (VADER compound {a.sentiment.compound:+.3f}).",
        "",
        f"Keywords ({a.keywords.method}): {', '.join(a.keywords.keywords) or 'none'}.",
    ]
    return "\n".join(lines) + "\n"
