"""Writing activities of the blog family: outline, draft and review a post from cited passages.

Two writers behind one interface. :class:`GroqWriter` asks a Groq chat model (ChatGroq;
``GROQ_MODEL``). :class:`OfflineWriter` is an honest extractive composer: it generates no
prose; headings are YAKE keyphrases of the passages and every paragraph is sentences
picked from one passage by TextRank, cited ``[n]``. Its ``method`` says so and the result
carries it. :func:`chat_from_env` follows the LLM provider choice
(``SAGAWORKS_LLM_PROVIDER``, ``GROQ_API_KEY``), as :func:`activities.llm.provider_from_env` does.
"""

from __future__ import annotations

import re
from typing import Protocol

from temporalio import activity

from sagaworks.activities.errors import ErrorClass, error
from sagaworks.activities.liveness import keep_alive
from sagaworks.activities.llm import groq_chat, groq_errors, groq_settings_from_env
from sagaworks.activities.text_analysis import keywords_of, split_sentences, textrank, words
from sagaworks.contracts.blog import PostQuality, Review, ReviewedPost, WriterInfo, WritingInput
from sagaworks.contracts.search import Hit

_CITATION = re.compile(r"\[(\d+)\]")
_CITED_SENTENCE = re.compile(r"[^.!?]+[.!?]+(?:\s*\[\d+\])?")
"""A sentence with the citation that follows it."""
_SECTION = re.compile(r"^## (.+?)(?: \[(\d+)\])?$", re.MULTILINE)


class Writer(Protocol):
    """Writes each stage as Markdown; raises ``ApplicationError`` of type ``ModelError``."""

    info: WriterInfo

    def outline(self, request: WritingInput) -> str: ...
    def draft(self, request: WritingInput) -> str: ...
    def review(self, request: WritingInput) -> Review: ...


def _title(phrase: str) -> str:
    return " ".join(w if w.isupper() else w.capitalize() for w in phrase.split())


def _sources(passages: list[Hit]) -> list[str]:
    return ["## Sources", ""] + [
        f"{n}. {p.path}, chunk {p.chunk_index}" for n, p in enumerate(passages, start=1)
    ]


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


class GroqChat:
    """One chat completion by a Groq model through ChatGroq, its errors as ``ModelError``s.

    Shared by the writer, the routing classifier and the news categoriser.
    """

    def __init__(self, api_key: str, model: str, base_url: str | None = None, timeout: float = 60) -> None:
        self.model = model
        # Temporal retries (groq_chat sets max_retries=0); a little freedom for prose.
        self._chat = groq_chat(api_key, model, base_url, timeout, temperature=0.3)

    def complete(self, prompt: str) -> str:
        """The model's answer; an empty answer is a (retryable) ``ModelError``."""
        with groq_errors():
            reply = self._chat.invoke(prompt)
        text = str(reply.content).strip()
        if not text:
            raise error(ErrorClass.MODEL, "the model gave an empty answer")
        return text


def chat_from_env() -> GroqChat | None:
    """The Groq chat when the LLM provider is Groq (see :func:`activities.llm.groq_settings_from_env`)."""
    settings = groq_settings_from_env()
    return GroqChat(settings.api_key, settings.model, settings.base_url) if settings else None


class GroqWriter:
    """Each stage is one chat completion by a Groq model."""

    def __init__(self, chat: GroqChat) -> None:
        self._chat = chat
        self.info = WriterInfo(provider="groq", model=chat.model, method="generated by the model from the cited passages")

    def _ask(self, stage: str, request: WritingInput) -> str:
        passages = "\n\n".join(f"[{n}] {p.text}" for n, p in enumerate(request.passages, start=1))
        prompt = _INSTRUCTIONS[stage].format(topic=request.topic, previous=request.previous)
        return self._chat.complete(f"{prompt}\n\nPassages:\n{passages}") + "\n"

    def outline(self, request: WritingInput) -> str:
        return self._ask("outline", request)

    def draft(self, request: WritingInput) -> str:
        return self._ask("draft", request)

    def review(self, request: WritingInput) -> Review:
        return Review(markdown=self._ask("review", request), notes=[f"reviewed by {self.info.model}"])


def writer_for(chat: GroqChat | None) -> Writer:
    """The Groq writer with a chat model, else the offline composer."""
    return GroqWriter(chat) if chat is not None else OfflineWriter()


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
        score=round(score, 4), topic_coverage=round(coverage, 4), cited_paragraphs=round(cited, 4),
        sections=round(sections, 4), length=round(length, 4),
    )


def word_count(markdown: str) -> int:
    """Words of the post without its Sources list."""
    return len(words(markdown.split("## Sources")[0]))


class WritingActivities:
    """The writing stages, each an activity, bound to one writer."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    @activity.defn
    def outline_post(self, request: WritingInput) -> str:
        """The post's outline (Markdown headings citing passages)."""
        with keep_alive():
            return self.writer.outline(request)

    @activity.defn
    def draft_post(self, request: WritingInput) -> str:
        """The draft following the outline."""
        with keep_alive():
            return self.writer.draft(request)

    @activity.defn
    def review_post(self, request: WritingInput) -> ReviewedPost:
        """The reviewed post, its word count and quality, and which writer wrote it."""
        with keep_alive():
            review = self.writer.review(request)
        return ReviewedPost(
            markdown=review.markdown,
            notes=review.notes,
            word_count=word_count(review.markdown),
            quality=post_quality(request.topic, review.markdown),
            writer=self.writer.info,
        )
