"""Concept extraction without the LLM gateway: the offline extractor (YAKE), which the
document family's gateway falls back on and a worker uses when no model is configured, and
a Groq extractor through ChatGroq that a worker can be handed as its extractor (``llm``).

Temporal owns retrying: ChatGroq runs with its own retries off, and every provider error
becomes a ``ModelError`` whose retryability and delay tell Temporal what to do.
"""

from __future__ import annotations

import functools
import json
import re
from concurrent.futures import Executor
from datetime import timedelta
from importlib.metadata import version
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, ValidationError
from temporalio.exceptions import ApplicationError

from sagaworks.activities.errors import ErrorClass, call_attempt, error

ConceptKind = Literal["entity", "topic", "term", "event", "other"]

INVALID_OUTPUT_ATTEMPTS = 3
"""Attempts of one chunk whose model output fails validation before the chunk fails."""
FAILED_CALL_ATTEMPTS = 5
"""Attempts of one chunk whose calls fail (5xx, unreachable) before the chunk fails.

Rate limits (429) are not failures: they are waited out (Retry-After), bounded by the
model policy's total time (``policies.MODEL``), however many they are."""
MAX_NAME = 120
"""Longest concept name (characters)."""
MAX_WORD = 40
"""Longest word a keyphrase may contain: longer "words" are text whose spaces were lost
(a PDF without word spacing) or a language written without spaces."""
RAW_OUTPUT_CHARS = 500
"""How much of an invalid model output a failure keeps (redacted), to diagnose it."""


class Concept(BaseModel):
    """A concept found in a chunk of text."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    kind: ConceptKind
    salience: float = Field(ge=0, le=1)


class ConceptList(BaseModel):
    """The structured output every provider must produce."""

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


_PROMPT = (
    "Extract the key concepts of the text below. Answer with JSON only, of the form "
    '{"concepts": [{"name": str, "kind": "entity"|"topic"|"term"|"event"|"other", '
    '"salience": number between 0 and 1}]}, at most 15 concepts, most salient first.\n\nText:\n'
)


class GroqProvider:
    """Concept extraction by a Groq chat model through ``langchain-groq``'s ChatGroq."""

    name = "groq"

    def __init__(self, api_key: str, model: str, base_url: str | None = None, timeout: float = 60) -> None:
        from langchain_groq import ChatGroq

        self.model = model
        self._chat = ChatGroq(
            model=model,
            api_key=api_key,  # type: ignore[arg-type]
            base_url=base_url,
            timeout=timeout,
            max_retries=0,  # Temporal retries, with the activity's policy
            temperature=0,
            model_kwargs={"response_format": {"type": "json_object"}},
        )

    def extract_concepts(self, text: str) -> ConceptList:
        import groq

        try:
            reply = self._chat.invoke(_PROMPT + text)
        except groq.RateLimitError as err:
            # Never final: the policy's total time bounds how long rate limits are waited out.
            raise error(
                ErrorClass.MODEL,
                f"Groq rate limit (429): {_message(err)}",
                next_retry_delay=_retry_after(err),
            ) from err
        except groq.APIStatusError as err:
            transient = err.status_code >= 500 or err.status_code in (408, 409)
            raise error(
                ErrorClass.MODEL,
                f"Groq HTTP {err.status_code}: {_message(err)}",
                non_retryable=not transient or call_attempt() >= FAILED_CALL_ATTEMPTS,
            ) from err
        except (groq.APIConnectionError, groq.APITimeoutError) as err:
            raise error(
                ErrorClass.MODEL, f"Groq unreachable: {err}", non_retryable=call_attempt() >= FAILED_CALL_ATTEMPTS
            ) from err
        return parse_concepts(str(reply.content))


def parse_concepts(raw: str) -> ConceptList:
    """Validate a model's raw output; a retryable error while attempts remain, then final.

    The start of the raw output, redacted (:func:`redact`), goes into the error's details
    so a failed chunk can be diagnosed without the history carrying the whole reply.
    """
    fenced = re.search(r"```(?:json)?\s*(.*?)```", raw, re.DOTALL)
    body = fenced.group(1) if fenced else raw
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    try:
        if isinstance(data, dict) and isinstance(data.get("concepts"), list):
            # A "name" no concept can have (a sentence, a run of words without spaces) is
            # dropped, not a reason to fail the chunk.
            data["concepts"] = [
                c
                for c in data["concepts"]
                if not (isinstance(c, dict) and isinstance(c.get("name"), str) and not is_concept_name(c["name"]))
            ]
            return ConceptList.model_validate(data)
        return ConceptList.model_validate_json(body)
    except ValidationError as invalid:
        attempt = call_attempt()
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'output'}: {e['msg']}" for e in invalid.errors()[:5])
        raise ApplicationError(
            f"model output failed validation (attempt {attempt}): {problems}",
            {"raw_output": redact(raw[:RAW_OUTPUT_CHARS]), "raw_length": len(raw)},
            type=ErrorClass.MODEL,
            non_retryable=attempt >= INVALID_OUTPUT_ATTEMPTS,
        ) from None


_SECRETS = re.compile(
    r"(?i)\b(?:gsk|sk|pk|api|key|token|bearer)[-_ ]?[A-Za-z0-9_\-]{12,}"  # API keys and tokens
    r"|[\w.+-]+@[\w-]+\.[\w.-]+"  # e-mail addresses
    r"|\b[A-Za-z0-9+/_\-]{32,}={0,2}"  # long opaque strings (keys, hashes, base64)
)


def redact(text: str) -> str:
    """``text`` with what looks like a credential or an e-mail address replaced."""
    return _SECRETS.sub("[redacted]", text)


def _message(err: Exception) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and "message" in detail:
            return str(detail["message"])
        return json.dumps(detail)[:500]
    return str(err)[:500]


def _retry_after(err: Exception) -> timedelta | None:
    response = getattr(err, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return timedelta(seconds=float(value)) if value else None
    except ValueError:
        return None
