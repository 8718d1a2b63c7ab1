"""News digest activities: fetch one feed, select new relevant articles, categorise,
summarise, build the newsletter, store it and record what it published.

Feeds are untrusted input. An HTTP feed is streamed with the feed's own timeouts and
refused once it exceeds its size limit; every feed is checked by defusedxml (no entity
declarations, no external references: entity-expansion bombs are refused before any
parser expands them) and must be well-formed XML before feedparser reads it.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime, timezone
from pathlib import Path
from xml.etree.ElementTree import ParseError

from pydantic import BaseModel, ValidationError
from sqlalchemy import JSON, DateTime, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column
from temporalio import activity

from sagaworks.activities.db import Base, Database, utcnow
from sagaworks.activities.documents import DocumentSettings
from sagaworks.activities.errors import ErrorClass, database_errors, error, validation_error
from sagaworks.activities.text_analysis import split_sentences, textrank, words
from sagaworks.activities.writing import GroqChat
from sagaworks.contracts.news_digest import (
    CATEGORIES,
    Article,
    Category,
    DigestArticle,
    FeedArticles,
    FeedSource,
    Newsletter,
    NewsletterInput,
    SelectInput,
    Selection,
    StoreDigestInput,
    SummariseInput,
)

USER_AGENT = "sagaworks-news-digest/0.1"
CATEGORY_TERMS: dict[Category, frozenset[str]] = {
    "technology": frozenset(
        "software hardware chip chips cloud api apis developer developers open-source model models gpu "
        "compiler database kubernetes browser app apps platform release launches framework code python "
        "rust security vulnerability".split()
    ),
    "business": frozenset(
        "market markets revenue funding investors acquisition acquires startup startups earnings profit "
        "shares stock ipo customers pricing deal valuation billion million quarter ceo layoffs".split()
    ),
    "research": frozenset(
        "study studies paper papers researchers university benchmark dataset experiment experiments "
        "findings journal peer-reviewed arxiv professor lab laboratory published results".split()
    ),
}
"""The offline classifier's lexicon: the category whose terms occur most wins; none is general."""


class DigestRow(Base):
    """A stored newsletter."""

    __tablename__ = "news_digests"
    digest_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    markdown: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SeenArticleRow(Base):
    """An article some stored digest published: never published again."""

    __tablename__ = "news_seen_articles"
    article_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest_key: Mapped[str] = mapped_column(String(300))


class FeedCacheRow(Base):
    """The articles of a feed's last successful fetch: the fallback when the feed fails."""

    __tablename__ = "news_feed_cache"
    url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    articles: Mapped[list[dict]] = mapped_column(JSON)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


def _plain(markup: str) -> str:
    from bs4 import BeautifulSoup

    return " ".join(BeautifulSoup(markup, "html.parser").get_text(" ").split())


def check_xml(data: bytes, where: str) -> None:
    """Refuse entity declarations, external references and malformed XML (final errors)."""
    import defusedxml.ElementTree as safe_xml
    from defusedxml import DefusedXmlException

    try:
        safe_xml.fromstring(data)
    except DefusedXmlException as refused:
        raise validation_error(
            f"refused: the feed declares XML entities or external references ({type(refused).__name__}); "
            "entity expansion is never performed",
            field=where,
        ) from None
    except ParseError as malformed:
        raise error(ErrorClass.PROCESSING, f"{where}: not well-formed XML: {malformed}", non_retryable=True) from None


def parse_feed(data: bytes, source: str, where: str) -> list[Article]:
    """The entries of an RSS 0.9x/1.0/2.0 or Atom document (checked by :func:`check_xml` first)."""
    import feedparser

    check_xml(data, where)
    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    if not parsed.get("version"):
        raise error(ErrorClass.PROCESSING, f"{where}: not an RSS or Atom feed", non_retryable=True)
    articles = []
    for entry in parsed.entries:
        link = entry.get("link", "")
        guid = entry.get("id") or link or entry.get("title", "")
        if not guid:
            continue
        content = entry.get("content", [{}])[0].get("value") if entry.get("content") else None
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        articles.append(
            Article(
                key=hashlib.sha256(guid.encode()).hexdigest(),
                guid=guid,
                title=_plain(entry.get("title", "")) or "(untitled)",
                link=link,
                source=source,
                published=datetime(*stamp[:6], tzinfo=timezone.utc) if stamp else None,
                text=_plain(content or entry.get("summary", "")),
            )
        )
    return articles


def category_of(article: Article) -> Category:
    """The category whose lexicon the title (counted twice) and text use most; else general."""
    bag = words(article.title) * 2 + words(article.text)
    scores = {c: sum(w in terms for w in bag) for c, terms in CATEGORY_TERMS.items()}
    best = max(scores, key=lambda c: (scores[c], -CATEGORIES.index(c)))
    return best if scores[best] > 0 else "general"


class _LLMCategories(BaseModel):
    categories: list[Category]


def llm_categories(chat: GroqChat, articles: list[Article]) -> list[Category]:
    """One category per article from the chat model (one call for the batch)."""
    listing = "\n".join(f"{n}. {a.title}: {a.text[:300]}" for n, a in enumerate(articles, start=1))
    raw = chat.complete(
        f"Put each numbered article in one category: {', '.join(CATEGORIES)}. Answer with JSON only: "
        f'{{"categories": [one category per article, in order]}}.\n\n{listing}'
    )
    found = re.search(r"\{.*\}", raw, re.DOTALL)
    try:
        answer = _LLMCategories.model_validate_json(found.group(0) if found else raw)
    except ValidationError:
        answer = None
    if answer is None or len(answer.categories) != len(articles):
        raise error(ErrorClass.MODEL, f"the model's categories are not one per article: {raw[:200]}")
    return answer.categories


def newsletter_of(request: NewsletterInput) -> Newsletter:
    """The newsletter in Markdown and in HTML, articles grouped by category."""
    day = request.date.strftime("%Y-%m-%d")
    md = [f"# {request.title}", "", f"{day} - {len(request.articles)} new articles", ""]
    page = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(request.title)} {day}</title></head><body>",
        f"<h1>{html.escape(request.title)}</h1>", f"<p>{day} - {len(request.articles)} new articles</p>",
    ]
    for category in CATEGORIES:
        chosen = [a for a in request.articles if a.category == category]
        if not chosen:
            continue
        md += [f"## {category.title()}", ""]
        page.append(f"<h2>{category.title()}</h2>")
        for a in chosen:
            md += [f"### [{a.title}]({a.link})" if a.link else f"### {a.title}", f"*{a.source}*", "", a.summary, ""]
            title = html.escape(a.title)
            heading = f'<a href="{html.escape(a.link, quote=True)}">{title}</a>' if a.link else title
            page += [f"<h3>{heading}</h3>", f"<p><em>{html.escape(a.source)}</em></p>", f"<p>{html.escape(a.summary)}</p>"]
    page.append("</body></html>")
    return Newsletter(markdown="\n".join(md).rstrip() + "\n", html="\n".join(page) + "\n")


class NewsActivities:
    """Bound to the database and the document roots (where file feeds may be read)."""

    def __init__(self, db: Database, settings: DocumentSettings | None = None, chat: GroqChat | None = None) -> None:
        self._db = db
        self._settings = settings or DocumentSettings()
        self._chat = chat

    def _read_file(self, feed: FeedSource) -> tuple[bytes, str]:
        raw = feed.url.removeprefix("file://")
        candidates = [Path(raw)] if Path(raw).is_absolute() else [root / raw for root in self._settings.roots]
        for candidate in candidates:
            path = candidate.resolve()
            if not any(path.is_relative_to(root) for root in self._settings.roots):
                raise validation_error("outside the allowed document roots (SAGAWORKS_DOCUMENT_ROOTS)", field=feed.url)
            if path.is_file():
                if path.stat().st_size > feed.max_bytes:
                    raise validation_error(f"{path.stat().st_size} bytes is over the feed's limit of {feed.max_bytes}", field=feed.url)
                return path.read_bytes(), str(path)
        raise validation_error("file not found", field=feed.url)

    def _download(self, feed: FeedSource) -> bytes:
        import httpx

        try:
            with httpx.Client(timeout=feed.timeout_seconds, follow_redirects=True, headers={"User-Agent": USER_AGENT}) as http:
                with http.stream("GET", feed.url) as response:
                    if response.status_code >= 400:
                        transient = response.status_code >= 500 or response.status_code in (408, 429)
                        raise error(ErrorClass.EXTERNAL, f"{feed.url}: HTTP {response.status_code}", non_retryable=not transient)
                    announced = int(response.headers.get("content-length") or 0)
                    if announced > feed.max_bytes:
                        raise validation_error(f"announces {announced} bytes, over the feed's limit of {feed.max_bytes}", field=feed.url)
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > feed.max_bytes:
                            raise validation_error(f"over the feed's limit of {feed.max_bytes} bytes", field=feed.url)
                    return bytes(body)
        except httpx.TimeoutException as slow:
            raise error(ErrorClass.EXTERNAL, f"{feed.url}: no answer within {feed.timeout_seconds} s ({type(slow).__name__})") from None
        except httpx.HTTPError as broken:
            raise error(ErrorClass.EXTERNAL, f"{feed.url}: {type(broken).__name__}: {broken}") from None

    @activity.defn
    def fetch_feed(self, feed: FeedSource) -> FeedArticles:
        """Fetch and parse one feed; cache its articles as the fallback for a later failure."""
        if feed.url.startswith(("http://", "https://")):
            data, where = self._download(feed), feed.url
        elif "://" in feed.url and not feed.url.startswith("file://"):
            raise validation_error("only http(s):// URLs and files are supported", field=feed.url)
        else:
            data, where = self._read_file(feed)
        articles = parse_feed(data, feed.name, where)
        with database_errors(), self._db.transaction() as session:
            session.merge(FeedCacheRow(url=feed.url, articles=[a.model_dump(mode="json") for a in articles]))
        return FeedArticles(feed=feed.name, articles=articles, fetched_from=where)

    @activity.defn
    def cached_feed(self, feed: FeedSource) -> FeedArticles:
        """Fallback of :meth:`fetch_feed`: the articles of the feed's last successful fetch."""
        with database_errors(), self._db.transaction() as session:
            row = session.get(FeedCacheRow, feed.url)
            cached = None if row is None else [Article.model_validate(a) for a in row.articles]
        if cached is None:
            raise error(ErrorClass.EXTERNAL, f"{feed.url}: never fetched successfully, no cached copy", non_retryable=True)
        return FeedArticles(feed=feed.name, articles=cached, fetched_from="cache")

    @activity.defn
    def select_articles(self, request: SelectInput) -> Selection:
        """Relevant articles no stored digest published yet, newest first, at most the limit."""
        patterns = [re.compile(rf"\b{re.escape(k)}\b", re.IGNORECASE) for k in request.keywords if k.strip()]
        unique: dict[str, Article] = {}
        duplicates = irrelevant = 0
        for article in request.articles:
            if article.key in unique:
                duplicates += 1
            elif patterns and not any(p.search(f"{article.title} {article.text}") for p in patterns):
                irrelevant += 1
            else:
                unique[article.key] = article
        with database_errors(), self._db.transaction() as session:
            seen = set(
                session.scalars(select(SeenArticleRow.article_key).where(SeenArticleRow.article_key.in_(list(unique))))
            )
        fresh = [a for a in unique.values() if a.key not in seen]
        oldest = datetime.min.replace(tzinfo=timezone.utc)
        fresh.sort(key=lambda a: (a.published or oldest, a.key), reverse=True)
        return Selection(
            articles=fresh[: request.max_articles], seen_before=len(seen), irrelevant=irrelevant,
            duplicates=duplicates, over_limit=max(0, len(fresh) - request.max_articles),
        )

    @activity.defn
    def categorise_and_summarise(self, request: SummariseInput) -> list[DigestArticle]:
        """Each article categorised (lexicon or chat model) and summarised in 2-3 TextRank sentences."""
        if request.categoriser == "llm":
            if self._chat is None:
                raise validation_error("no LLM is configured on the worker (GROQ_API_KEY)", field="categoriser")
            categories = llm_categories(self._chat, request.articles)
        else:
            categories = [category_of(a) for a in request.articles]
        out = []
        for a, category in zip(request.articles, categories):
            sentences = textrank(split_sentences(a.text), request.sentences) if a.text else []
            out.append(
                DigestArticle(
                    key=a.key, title=a.title, link=a.link, source=a.source, published=a.published,
                    category=category, summary=" ".join(sentences) or a.title,
                )
            )
        return out

    @activity.defn
    def build_newsletter(self, request: NewsletterInput) -> Newsletter:
        """The newsletter in Markdown and HTML."""
        return newsletter_of(request)

    @activity.defn
    def store_digest(self, request: StoreDigestInput) -> str:
        """Store the newsletter and mark its articles seen, in one transaction (idempotent)."""
        with database_errors(), self._db.transaction() as session:
            if session.get(DigestRow, request.digest_key) is None:
                session.add(
                    DigestRow(
                        digest_key=request.digest_key, name=request.name,
                        markdown=request.newsletter.markdown, html=request.newsletter.html,
                    )
                )
                already = set(
                    session.scalars(
                        select(SeenArticleRow.article_key).where(SeenArticleRow.article_key.in_(request.article_keys))
                    )
                )
                session.add_all(
                    SeenArticleRow(article_key=k, digest_key=request.digest_key)
                    for k in dict.fromkeys(request.article_keys)
                    if k not in already
                )
        return request.digest_key
