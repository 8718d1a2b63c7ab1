"""The parallel-analysis family's offline analyses, each an activity of the worker's CPU
queue (its process pool): sentiment, keywords, summary and language of one text, and the
cheaper fallbacks of keywords and summary. The analysis itself is the text families'
shared one (``activities/text_analysis.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from temporalio import activity

from sagaworks import ErrorClass, error, validation_error
from sagaworks.activities.text_analysis import (
    frequent_words,
    keywords_of,
    language_of,
    lead_sentences,
    sentiment_of,
    summary_of,
    words,
)
from sagaworks.contracts.text import Keywords, Language, Sentiment, Summary, TextInput

T = TypeVar("T")


def _injected(request: TextInput, part: str) -> None:
    if request.fail:
        # Retryable like a real fault would be, so the retry policy runs out first.
        raise error(ErrorClass.PROCESSING, f"{part} analysis failed (injected)")


def _analysed(request: TextInput, part: str, analyse: Callable[[str], T]) -> T:
    """Run one analysis of the request's text (failing first when ``fail`` is set)."""
    _injected(request, part)
    if not words(request.text):
        raise validation_error("no words to analyse", field="text")
    return analyse(request.text)


@activity.defn
def analyse_sentiment(request: TextInput) -> Sentiment:
    """VADER sentiment of the text."""
    return _analysed(request, "sentiment", sentiment_of)


@activity.defn
def extract_keywords(request: TextInput) -> Keywords:
    """YAKE keyphrases of the text."""
    return _analysed(request, "keywords", keywords_of)


@activity.defn
def frequent_keywords(request: TextInput) -> Keywords:
    """Fallback of :func:`extract_keywords`: frequent words."""
    return _analysed(request.model_copy(update={"fail": False}), "keywords", frequent_words)


@activity.defn
def summarise_text(request: TextInput) -> Summary:
    """TextRank summary of the text."""
    return _analysed(request, "summary", summary_of)


@activity.defn
def lead_summary(request: TextInput) -> Summary:
    """Fallback of :func:`summarise_text`: the first sentences."""
    return _analysed(request.model_copy(update={"fail": False}), "summary", lead_sentences)


@activity.defn
def detect_language(request: TextInput) -> Language:
    """py3langid language of the text."""
    return _analysed(request, "language", language_of)
