"""Writing activities of the blog family: outline, draft and review a post from cited passages.

Every step asks the model the LLM gateway (:class:`sagaworks.LLM`) configures for the
``blog`` family (``SAGAWORKS_LLM[_BLOG]_PROVIDER``...). The step's declared offline
fallback is :class:`OfflineWriter`, an honest extractive composer: it generates no prose;
headings are YAKE keyphrases of the passages and every paragraph is sentences picked from
one passage by TextRank, cited ``[n]``. It writes when no model is configured, and when
the gateway's breaker is open, its budget is spent past the step's deadline, or the model
refuses or answers nothing. Each step then says why: the outline's and the draft's
:class:`WrittenText` in ``fallback``, the review's :class:`WriterInfo` (who wrote the post)
in its ``fallback``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from temporalio import activity

from sagaworks import LLM, LLMAnswer, keep_alive
from sagaworks.activities.text_analysis import keywords_of, split_sentences, textrank, words
from sagaworks.contracts.blog import PostQuality, Review, ReviewedPost, WriterInfo, WritingInput, WrittenText
from sagaworks.contracts.search import Hit

FAMILY = "blog"
"""The family's name to the LLM gateway: ``SAGAWORKS_LLM_BLOG_*`` configure its model."""

MAX_TOKENS = {"outline": 400, "draft": 1500, "review": 1500}
"""The longest answer each step asks for (the gateway's budget counts them)."""

_CITATION = re.compile(r"\[(\d+)\]")
_CITED_SENTENCE = re.compile(r"[^.!?]+[.!?]+(?:\s*\[\d+\])?")
"""A sentence with the citation that follows it."""
_SECTION = re.compile(r"^## (.+?)(?: \[(\d+)\])?$", re.MULTILINE)


def _title(phrase: str) -> str:
    return " ".join(w if w.isupper() else w.capitalize() for w in phrase.split())


def _sources(passages: list[Hit]) -> list[str]:
    return ["## Sources", ""] + [f"{n}. {p.path}, chunk {p.chunk_index}" for n, p in enumerate(passages, start=1)]


class OfflineWriter:
    """Extractive composition from the passages: no generated sentence, every one cited."""

    info = WriterInfo(
        provider="offline",
        model="extractive (YAKE headings, TextRank sentences)",
        method="extractive: headings are keyphrases of the passages and every sentence is "
        "copied from the cited passage; nothing is generated",
    )

    def outline(self, request: WritingInput) -> str:
        """One section per passage from a document not used yet (at most four)."""
        lines = [f"# {request.topic}", "", "## Introduction"]
        used_documents: set[str] = set()
        used_headings = {w for w in words(request.topic)}
        for n, passage in enumerate(request.passages, start=1):
            if passage.document_id in used_documents or len(used_documents) == 4:
                continue
            heading = next(
                (k for k in keywords_of(passage.text, top=10).keywords if not set(words(k)) <= used_headings),
                None,
            )
            if heading is None:
                continue
            used_documents.add(passage.document_id)
            used_headings.update(words(heading))
            lines.append(f"## {_title(heading)} [{n}]")
        lines.append("## Key Takeaways")
        return "\n".join(lines) + "\n"

    def draft(self, request: WritingInput) -> str:
        """Each section: the cited passage's three most central sentences not used before."""
        passages = request.passages
        body: list[str] = [request.previous.splitlines()[0], ""]
        takeaways: list[str] = []
        used: set[str] = set()
        for heading, number in _SECTION.findall(request.previous):
            if heading == "Introduction":
                lead = [(textrank(split_sentences(p.text), 1)[0], n) for n, p in enumerate(passages[:2], start=1)]
                used.update(sentence for sentence, _ in lead)
                body += ["## Introduction", "", " ".join(f"{s} [{n}]" for s, n in lead), ""]
            elif heading == "Key Takeaways":
                body += ["## Key Takeaways", "", *takeaways, ""]
            elif number:
                n = int(number)
                fresh = [s for s in split_sentences(passages[n - 1].text) if s not in used]
                chosen = textrank(fresh, 3)
                if not chosen:
                    continue
                used.update(chosen)
                body += [f"## {heading}", "", " ".join(chosen) + f" [{n}]", ""]
                takeaways.append(f"- {chosen[0]} [{n}]")
        return "\n".join(body + _sources(passages)) + "\n"

    def review(self, request: WritingInput) -> Review:
        """Drop sentences repeated across sections; list paragraphs that cite nothing."""
        seen: set[str] = set()
        notes: list[str] = []
        out: list[str] = []
        for line in request.previous.splitlines():
            if not line or line.startswith(("#", "- ", "1", "2", "3", "4", "5", "6", "7", "8", "9")):
                out.append(line)
                continue
            kept = []
            for sentence in _CITED_SENTENCE.findall(line):
                sentence = sentence.strip()
                key = _CITATION.sub("", sentence).strip()
                if key in seen:
                    notes.append(f"removed a repeated sentence: {key[:60]}...")
                    continue
                seen.add(key)
                kept.append(sentence)
            out.append(" ".join(kept))
        body = "\n".join(out).split("## Sources")[0]
        for paragraph in body.split("\n\n"):
            if paragraph.strip() and not paragraph.lstrip().startswith("#") and not _CITATION.search(paragraph):
                notes.append(f"cites no passage: {paragraph.strip()[:60]}...")
        if not notes:
            notes.append("no repeated sentences; every paragraph cites a passage")
        return Review(markdown="\n".join(out).rstrip() + "\n", notes=notes)


_INSTRUCTIONS = {
    "outline": "Write a Markdown outline for a blog post titled '# {topic}'. Use '## ' headings: "
    "Introduction, three or four sections, Key Takeaways. After each section heading put the number "
    "of the passage it draws on in brackets, e.g. '## Retry Budgets [2]'. Answer with the outline only.",
    "draft": "Write the blog post '# {topic}' in Markdown following this outline. Use only facts from "
    "the passages and cite them as [n] after each paragraph. End with a '## Sources' list. Outline:\n{previous}",
    "review": "Review this blog post: fix grammar, improve clarity and flow, keep every [n] citation and "
    "the Sources list. Answer with the improved post only.\n\n{previous}",
}


def _prompt(stage: str, request: WritingInput) -> str:
    passages = "\n\n".join(f"[{n}] {p.text}" for n, p in enumerate(request.passages, start=1))
    instruction = _INSTRUCTIONS[stage].format(topic=request.topic, previous=request.previous)
    return f"{instruction}\n\nPassages:\n{passages}"


def _prose(answer: str) -> str:
    """The model's Markdown; an empty answer is unusable (the fallback writes instead)."""
    text = answer.strip()
    if not text:
        raise ValueError("the model gave an empty answer")
    return text + "\n"


def writer_info(answer: LLMAnswer[Any]) -> WriterInfo:
    """Who wrote a step's text: the model that answered, or the offline composer and why."""
    if answer.provider == "offline":
        return OfflineWriter.info.model_copy(update={"fallback": answer.fallback})
    provider, _, model = answer.provider.partition(":")
    return WriterInfo(provider=provider, model=model, method="generated by the model from the cited passages")


def post_quality(topic: str, markdown: str) -> PostQuality:
    """Topic coverage, cited paragraphs, sections and length of a post, and their mean."""
    body = markdown.split("## Sources")[0]
    topic_terms = {w for w in words(topic) if len(w) > 2}
    post_words = words(body)
    coverage = len(topic_terms & set(post_words)) / len(topic_terms) if topic_terms else 1.0
    paragraphs = [p for p in body.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
    cited = sum(bool(_CITATION.search(p)) for p in paragraphs) / len(paragraphs) if paragraphs else 0.0
    sections = min(1.0, len(re.findall(r"^## ", body, re.MULTILINE)) / 4)
    length = min(1.0, len(post_words) / 400)
    score = (coverage + cited + sections + length) / 4
    return PostQuality(
        score=round(score, 4),
        topic_coverage=round(coverage, 4),
        cited_paragraphs=round(cited, 4),
        sections=round(sections, 4),
        length=round(length, 4),
    )


def word_count(markdown: str) -> int:
    """Words of the post without its Sources list."""
    return len(words(markdown.split("## Sources")[0]))


class WritingActivities:
    """The writing steps, each an activity: the blog's model through the LLM gateway,
    the offline composer as each step's fallback."""

    def __init__(self, llm: LLM) -> None:
        self._llm = llm
        self._offline = OfflineWriter()

    def _write(self, stage: str, request: WritingInput, offline: Callable[[], str]) -> LLMAnswer[str]:
        with keep_alive():
            return self._llm.ask(
                FAMILY, _prompt(stage, request), max_tokens=MAX_TOKENS[stage], parse=_prose, fallback=offline
            )

    @activity.defn
    def outline_post(self, request: WritingInput) -> WrittenText:
        """The post's outline (Markdown headings citing passages), and why the offline
        composer wrote it if it did although a model is configured."""
        answer = self._write("outline", request, lambda: self._offline.outline(request))
        return WrittenText(text=answer.value, fallback=answer.fallback)

    @activity.defn
    def draft_post(self, request: WritingInput) -> WrittenText:
        """The draft following the outline, and why the offline composer wrote it if it did."""
        answer = self._write("draft", request, lambda: self._offline.draft(request))
        return WrittenText(text=answer.value, fallback=answer.fallback)

    @activity.defn
    def review_post(self, request: WritingInput) -> ReviewedPost:
        """The reviewed post, its word count and quality, and which writer wrote it."""
        with keep_alive():
            answer = self._llm.ask(
                FAMILY,
                _prompt("review", request),
                max_tokens=MAX_TOKENS["review"],
                parse=lambda raw: Review(markdown=_prose(raw), notes=[]),
                fallback=lambda: self._offline.review(request),
            )
        review, info = answer.value, writer_info(answer)
        notes = review.notes or [f"reviewed by {info.model}"]
        return ReviewedPost(
            markdown=review.markdown,
            notes=notes,
            word_count=word_count(review.markdown),
            quality=post_quality(request.topic, review.markdown),
            writer=info,
        )
