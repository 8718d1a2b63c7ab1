"""Text analysis by the parallel-analysis family's model, through the LLM gateway
(:class:`sagaworks.LLM`; ``SAGAWORKS_LLM[_PARALLEL_ANALYSIS]_*`` configure it).

:meth:`ModelAnalysisActivities.ask_model_analyses` asks the model for sentiment, keywords
and summary whenever one is configured. Its declared fallback is the offline analysis: a
part the model does not answer (none configured, the gateway's breaker open, its budget
spent past the step's deadline, an answer that is not the JSON asked for) comes back empty,
with the reason when a model is configured, and the workflow runs that part's offline
analysis on the CPU queue (where the process pool is), saying so in the result.

``llm_sentiment``, ``llm_keywords`` and ``llm_summary`` serve runs started before the model
was asked whenever configured (their input chose ``provider="llm"``): each raises when the
model gives no usable answer, and those runs fall back to the offline analysis themselves.
"""

from __future__ import annotations

import copy
import re
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError
from temporalio import activity

from sagaworks import LLM, ErrorClass, error, keep_alive
from sagaworks.contracts.parallel_analysis import MODEL_PARTS, ModelAnalyses
from sagaworks.contracts.text import Keywords, Sentiment, Summary, TextInput

FAMILY = "parallel-analysis"
"""The family's name to the LLM gateway."""

M = TypeVar("M", bound=BaseModel)


class _Sentiment(BaseModel):
    label: str = Field(pattern="^(positive|negative|neutral)$")
    score: float = Field(ge=-1, le=1)


class _Keywords(BaseModel):
    keywords: list[str] = Field(min_length=1, max_length=20)


class _Summary(BaseModel):
    sentences: list[str] = Field(min_length=1, max_length=5)


_PROMPTS = {
    "sentiment": 'Judge the sentiment of the text. Answer with JSON only: {"label": "positive"|"negative"|"neutral", '
    '"score": <number from -1 to 1>}.',
    "keywords": 'List the 8 most important keyphrases of the text. Answer with JSON only: {"keywords": [str, ...]}.',
    "summary": 'Summarise the text in 3 sentences. Answer with JSON only: {"sentences": [str, str, str]}.',
}

_SHAPES: dict[str, type[BaseModel]] = {"sentiment": _Sentiment, "keywords": _Keywords, "summary": _Summary}

_PROGRESS = ("found", "fallbacks")
"""What :meth:`ModelAnalysisActivities.ask_model_analyses`'s heartbeats carry."""


def _json(raw: str, model: type[M]) -> M:
    """The answer's JSON object as ``model``; ``ValueError`` (a ``ValidationError``) otherwise."""
    found = re.search(r"\{.*\}", raw, re.DOTALL)
    return model.model_validate_json(found.group(0) if found else raw)


def _part(part: str, answer: BaseModel, by: str) -> Sentiment | Keywords | Summary:
    method = f"llm:{by}"
    if isinstance(answer, _Sentiment):
        return Sentiment(label=answer.label, compound=answer.score, method=method)  # type: ignore[arg-type]
    if isinstance(answer, _Keywords):
        return Keywords(keywords=answer.keywords, method=method)
    assert isinstance(answer, _Summary)
    return Summary(sentences=answer.sentences, method=method)


def _prompt(part: str, request: TextInput) -> str:
    return f"{_PROMPTS[part]}\n\nText:\n{request.text}"


def _resumed_progress() -> dict[str, dict[str, Any]]:
    """The parts an earlier attempt of this activity settled, from its heartbeats: ``found``
    (part -> the model's answer, as JSON) and ``fallbacks`` (part -> why none); else none."""
    last = activity.info().heartbeat_details if activity.in_activity() else []
    if len(last) == 1 and isinstance(last[0], dict) and all(isinstance(last[0].get(k), dict) for k in _PROGRESS):
        return {key: dict(last[0][key]) for key in _PROGRESS}
    return {key: {} for key in _PROGRESS}


class ModelAnalysisActivities:
    """Sentiment, keywords and summary by the family's model."""

    def __init__(self, llm: LLM) -> None:
        self._llm = llm

    @activity.defn
    def ask_model_analyses(self, request: TextInput) -> ModelAnalyses:
        """Each part the model answers; the others empty, with why when a model is configured.

        The parts are asked one after another, and a call that must wait (the gateway's
        budget spent, a 429) fails the attempt for Temporal to retry after the wait. The
        heartbeats carry the parts already settled, so a retry asks only the rest: were it
        to ask them all again, a budget with room for fewer calls than the parts at once
        (many runs sharing it) would fail every attempt before its last part, for good.
        """
        llm = self._llm
        if not llm.configured(FAMILY):
            return ModelAnalyses()
        progress = _resumed_progress()
        found, fallbacks = progress["found"], progress["fallbacks"]
        # The keep-alive thread sends a copy: the dicts change in this thread meanwhile.
        sent = [copy.deepcopy(progress)]

        def record() -> None:
            sent[0] = copy.deepcopy(progress)
            if activity.in_activity():
                activity.heartbeat(sent[0])

        provider = llm.settings(FAMILY).name
        with keep_alive(details=lambda: sent):
            for part in MODEL_PARTS:
                if part in found or part in fallbacks:
                    continue

                def parse(raw: str, shape: type[BaseModel] = _SHAPES[part]) -> BaseModel | None:
                    return _json(raw, shape)

                answer = llm.ask(FAMILY, _prompt(part, request), json_mode=True, parse=parse, fallback=lambda: None)
                if answer.value is None:
                    fallbacks[part] = answer.fallback or "the model gave no answer"
                else:
                    found[part] = _part(part, answer.value, answer.provider.partition(":")[2]).model_dump(mode="json")
                record()
        return ModelAnalyses.model_validate({**found, "provider": provider, "fallbacks": fallbacks})

    def _ask(self, part: str, request: TextInput) -> Sentiment | Keywords | Summary:
        with keep_alive():
            reply = self._llm.complete(FAMILY, _prompt(part, request), json_mode=True)
        try:
            return _part(part, _json(reply.text, _SHAPES[part]), reply.provider.partition(":")[2])
        except ValidationError:
            raise error(ErrorClass.MODEL, f"the model's {part} is not the JSON asked for: {reply.text[:200]}") from None

    @activity.defn
    def llm_sentiment(self, request: TextInput) -> Sentiment:
        """The model's sentiment label and score (runs that chose ``provider="llm"``)."""
        return self._ask("sentiment", request)  # type: ignore[return-value]

    @activity.defn
    def llm_keywords(self, request: TextInput) -> Keywords:
        """The model's keyphrases (runs that chose ``provider="llm"``)."""
        return self._ask("keywords", request)  # type: ignore[return-value]

    @activity.defn
    def llm_summary(self, request: TextInput) -> Summary:
        """The model's three-sentence summary (runs that chose ``provider="llm"``)."""
        return self._ask("summary", request)  # type: ignore[return-value]
