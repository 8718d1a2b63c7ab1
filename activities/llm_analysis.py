"""Text analysis by the worker's chat model: the LLM option of the parallel-analysis family.

Each answer must be the JSON asked for; anything else is a retryable ``ModelError``, so the
retry policy runs and then the workflow falls back to the offline analysis.
"""

from __future__ import annotations

import re
from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError
from temporalio import activity

from sagaworks.activities.errors import ErrorClass, error, validation_error
from sagaworks.activities.liveness import keep_alive
from sagaworks.activities.llm import GroqChat
from sagaworks.contracts.text import Keywords, Sentiment, Summary, TextInput

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


class ChatAnalysisActivities:
    """Sentiment, keywords and summary by the chat model (None: no model configured)."""

    def __init__(self, chat: GroqChat | None) -> None:
        self._chat = chat

    def _ask(self, part: str, request: TextInput, model: type[M]) -> M:
        if self._chat is None:
            raise validation_error("no LLM is configured on the worker (GROQ_API_KEY)", field="provider")
        with keep_alive():
            raw = self._chat.complete(f"{_PROMPTS[part]}\n\nText:\n{request.text}")
        found = re.search(r"\{.*\}", raw, re.DOTALL)
        try:
            return model.model_validate_json(found.group(0) if found else raw)
        except ValidationError:
            raise error(ErrorClass.MODEL, f"the model's {part} is not the JSON asked for: {raw[:200]}") from None

    @activity.defn
    def llm_sentiment(self, request: TextInput) -> Sentiment:
        """The chat model's sentiment label and score."""
        answer = self._ask("sentiment", request, _Sentiment)
        return Sentiment(label=answer.label, compound=answer.score, method=f"llm:{self._chat.model}")  # type: ignore[union-attr,arg-type]

    @activity.defn
    def llm_keywords(self, request: TextInput) -> Keywords:
        """The chat model's keyphrases."""
        return Keywords(keywords=self._ask("keywords", request, _Keywords).keywords, method=f"llm:{self._chat.model}")  # type: ignore[union-attr]

    @activity.defn
    def llm_summary(self, request: TextInput) -> Summary:
        """The chat model's three-sentence summary."""
        return Summary(sentences=self._ask("summary", request, _Summary).sentences, method=f"llm:{self._chat.model}")  # type: ignore[union-attr]
