"""The document family's concept extraction without a model: the concept types, the
extractor interface (:class:`LLMProvider`) and the offline extractor (YAKE), which the
family's LLM gateway call falls back on and which answers when no model is configured.
The model itself is asked through the gateway (``sagaworks.LLM``).
"""

from __future__ import annotations

import functools
from concurrent.futures import Executor
from importlib.metadata import version
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

ConceptKind = Literal["entity", "topic", "term", "event", "other"]

FAILED_CALL_ATTEMPTS = 5
"""Attempts of one chunk whose extraction fails unexpectedly (a bug: an ``InternalError``)
before the chunk fails; the model policy (``policies.MODEL``) itself caps no attempts."""
MAX_NAME = 120
"""Longest concept name (characters)."""
MAX_WORD = 40
"""Longest word a keyphrase may contain: longer "words" are text whose spaces were lost
(a PDF without word spacing) or a language written without spaces."""


class Concept(BaseModel):
    """A concept found in a chunk of text."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    kind: ConceptKind
    salience: float = Field(ge=0, le=1)


class ConceptList(BaseModel):
    """The structured output every extractor, and the model, must produce."""

    concepts: list[Concept] = Field(max_length=50)


class LLMProvider(Protocol):
    """Extracts concepts from text; raises ``ApplicationError`` of type ``ModelError``."""

    name: str
    model: str

    def extract_concepts(self, text: str) -> ConceptList: ...


class OfflineProvider:
    """Deterministic, offline concept extraction: YAKE keyphrases ranked with frequency.

    Salience mixes the keyphrase's YAKE rank with how often it occurs in the chunk;
    capitalised multi-word phrases are reported as entities, the rest as terms.
    """

    name = "offline"

    def __init__(self, top: int = 10, max_words: int = 3, cpu_pool: Executor | None = None) -> None:
        """``cpu_pool`` (the worker's process pool) runs YAKE, which holds the GIL for its
        whole run: in this process's threads it would stall the worker's event loop and
        every other activity; None runs it in the calling thread."""
        self._top, self._max_words, self._pool = top, max_words, cpu_pool
        self.model = f"yake-{version('yake')} (n<={max_words}, top {top})"

    def extract_concepts(self, text: str) -> ConceptList:
        lowered = text.lower()
        concepts = []
        args = (text, self._max_words, self._top)
        phrases = yake_keyphrases(*args) if self._pool is None else self._pool.submit(yake_keyphrases, *args).result()
        for rank, phrase in enumerate(phrases[: self._top]):
            frequency = lowered.count(phrase.lower())
            salience = 0.6 * (1 - rank / self._top) + 0.4 * min(1.0, frequency / 3)
            words = phrase.split()
            kind: ConceptKind = "entity" if len(words) > 1 and all(w[:1].isupper() for w in words) else "term"
            concepts.append(Concept(name=phrase, kind=kind, salience=round(salience, 3)))
        return ConceptList(concepts=concepts)


@functools.cache
def _yake_extractor(max_words: int, top: int) -> Any:
    import yake

    # Twice as many as kept: phrases that cannot be concept names are dropped.
    return yake.KeywordExtractor(lan="en", n=max_words, top=2 * top, dedupLim=0.7)


def yake_keyphrases(text: str, max_words: int, top: int) -> list[str]:
    """YAKE's keyphrases of ``text`` that can be concept names, best first (a module
    function, so a process pool can run it; each process builds its extractor once)."""
    return [p for p, _score in _yake_extractor(max_words, top).extract_keywords(text) if is_concept_name(p)]


def is_concept_name(phrase: str) -> bool:
    """Whether a keyphrase fits a :class:`Concept` name and reads as words."""
    words = phrase.split()
    return bool(words) and len(phrase) <= MAX_NAME and all(len(w) <= MAX_WORD for w in words)
