"""Contracts of the blog family: research -> outline -> draft -> review."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from sagaworks import StageResume, StrictModel, Text
from sagaworks.contracts.search import Hit, SearchHits

BLOG_STEPS = ("research", "outline", "draft", "review")
"""The blog's steps, in order (``saga restart ID --from STEP`` names one)."""


class BlogInput(StrictModel):
    """Write a blog post on a topic from the stored documents."""

    topic: Text = Field(min_length=3, max_length=200)
    sources: int = Field(default=6, ge=1, le=20)
    """Passages the research step keeps (BM25 over the stored chunks)."""
    resume: SkipJsonSchema[BlogResume | None] = None
    """Set only in the inputs of runs restarted before the blog ran on the step runner
    (whose restart carries the earlier steps in the run's memo); kept so those inputs
    still decode and their histories replay. Not in the JSON schema (forms, OpenAPI);
    catalog parsing refuses it from callers."""


class BlogResume(StageResume):
    """How runs restarted before the step runner's restart carried the earlier steps:
    the research passages, the outline and the draft of the source run. Nothing sets it
    any more; old inputs still decode."""

    research: SearchHits | None = None
    outline: str | None = None
    draft: str | None = None


class Citation(BaseModel):
    """A research passage, numbered as the post cites it: ``[n]``."""

    number: int
    path: str
    chunk_index: int
    score: float


class WritingInput(StrictModel):
    """What a writing step sees: the topic, the numbered passages and the previous step."""

    topic: str
    passages: list[Hit]
    """Passage ``n`` is ``passages[n - 1]``."""
    previous: str = ""
    """The outline for the draft, the draft for the review."""


class WrittenText(BaseModel):
    """What the outline and draft steps return: the text, and why the offline composer
    wrote it although a model is configured."""

    text: str
    fallback: str | None = None
    """The LLM gateway's reason (its breaker open, its budget spent, the model refusing or
    answering nothing); None when the model wrote it or none is configured."""

    @model_validator(mode="before")
    @classmethod
    def _recorded_text(cls, data: Any) -> Any:
        """Runs recorded before these steps said so returned the bare text: it still decodes
        (their histories replay, and a restart from ``draft`` or ``review`` reuses it)."""
        return {"text": data} if isinstance(data, str) else data


class PostQuality(BaseModel):
    """A computed score in [0, 1]: the mean of the four measures below."""

    score: float
    topic_coverage: float
    """Share of the topic's terms the post uses."""
    cited_paragraphs: float
    """Share of body paragraphs that cite a passage."""
    sections: float
    """Sections over four, capped at 1."""
    length: float
    """Words over 400, capped at 1."""


class WriterInfo(BaseModel):
    provider: str
    model: str
    method: str
    """How the text was produced, e.g. that the offline composer only extracts sentences."""
    fallback: str | None = None
    """Why the offline composer wrote although a model is configured (the LLM gateway's
    breaker open, its budget spent, the model refusing...); None otherwise."""


class Review(BaseModel):
    """What a writer's review returns."""

    markdown: str
    notes: list[str]
    """What the review changed or found."""


class ReviewedPost(Review):
    """The review, measured, with who wrote it."""

    word_count: int
    quality: PostQuality
    writer: WriterInfo


class BlogResult(BaseModel):
    topic: str
    markdown: str
    """The post, rendered on the console's run page."""
    word_count: int
    quality: PostQuality
    citations: list[Citation]
    review_notes: list[str]
    writer: WriterInfo
    resumed_from: str | None = None
    """The run whose earlier stages a restarted run took over."""
    fallbacks: list[str] = Field(default_factory=list)
    """Each step the offline composer wrote although a model is configured, as ``STEP:
    reason`` (``outline: breaker llm open: ...``); empty when the model wrote every step or
    none is configured. The steps' own results say it too (``fallback``; the review's in
    ``writer.fallback``)."""
