"""News digest activities: fetch one feed, select new relevant articles, categorise,
summarise, build the newsletter, store it and record what it published.

Feeds are untrusted input. An HTTP feed is streamed (into a temporary file) with the feed's
own timeouts and refused once it exceeds its size limit; every feed is read as a stream by
:class:`activities.feed_reader.FeedReader` (defusedxml: no entity declarations, no external
references; entries and their parts capped). A fetch stores the feed's articles in the
database and returns counts (claim check): the workflow's history carries the selected
articles only, and every result is bounded (:func:`bounded`).
"""

from __future__ import annotations

import copy
import heapq
import html
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, RootModel
from sqlalchemy import DateTime, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sagaworks import LLM, Base, Database, ErrorClass, database_errors, error, keep_alive, validation_error
from sagaworks.activities.document import DocumentSettings, roots_from_env
from sagaworks.activities.feed_reader import FeedReader
from sagaworks.activities.text_analysis import split_sentences, textrank, words
from sagaworks.contracts.news_digest import (
    ALREADY_PUBLISHED,
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


def _now() -> datetime:
    return datetime.now(UTC)


FAMILY = "news-digest"
"""The family's name to the LLM gateway: ``SAGAWORKS_LLM_NEWS_DIGEST_*`` configure its model."""
SUMMARY_TOKENS = 200
"""The longest summary the model may write (its completion tokens)."""
CATEGORY_TOKENS = 8
"""The completion tokens the categories answer may take per article (a category, its quotes
and comma), :data:`CATEGORIES_TOKENS` more for the JSON around them: the gateway's budget
reserves every completion token a call allows, so the allowance grows with the digest
instead of the gateway's default for any call."""
CATEGORIES_TOKENS = 32
"""The categories answer's own JSON around the per-article words."""
ARTICLE_CHARS = 4000
"""How much of an article's text its summary prompt carries."""
USER_AGENT = "sagaworks-news-digest/0.1"
RESULT_BYTES = 2**20
"""The largest result (JSON) a news activity returns; Temporal's payload limit is 2 MiB."""
SELECTION_BYTES = 256 * 2**10
"""The most article data (JSON) one digest selects: its summaries, newsletter and result
stay well under :data:`RESULT_BYTES`. Newer articles first; the rest wait for a later digest."""
SPOOL_BYTES = 2**20
"""A download larger than this is held in a temporary file, not in memory."""
STORE_BATCH = 500
"""Articles written or read per database round trip."""
ResultT = TypeVar("ResultT", bound=BaseModel)
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


DEFAULT_FEED_ROOT = Path(__file__).resolve().parents[1] / "samples" / "feeds"
"""The feed root when none is configured: the demo's sample feeds."""


@dataclass(frozen=True)
class FeedSettings:
    """Where file feeds may be read from (environment variable in parentheses)."""

    roots: tuple[Path, ...] = field(default_factory=lambda: roots_from_env("SAGAWORKS_FEED_ROOTS", DEFAULT_FEED_ROOT))
    """Folders of feed files (``SAGAWORKS_FEED_ROOTS``, os.pathsep-separated; default
    ``samples/feeds``, the demo's). The worker's document roots are allowed as well; a
    relative path is looked up under the feed roots, then the document roots, in order."""


class DigestRow(Base):
    """A stored newsletter."""

    __tablename__ = "news_digests"
    digest_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    markdown: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SeenArticleRow(Base):
    """An article some stored digest published: never published again."""

    __tablename__ = "news_seen_articles"
    article_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest_key: Mapped[str] = mapped_column(String(300))


class FeedRow(Base):
    """A feed's last successful fetch: its articles are the :class:`FeedArticleRow` of its url."""

    __tablename__ = "news_feeds"
    url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    entries: Mapped[int] = mapped_column(Integer)
    entries_not_read: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class FeedArticleRow(Base):
    """One article of a feed's last successful fetch (the claim check of the fetch, and the
    fallback when the feed fails). ``source`` is not stored: it is the name a digest gives
    the feed."""

    __tablename__ = "news_feed_articles"
    url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_key: Mapped[str] = mapped_column(String(64))
    guid: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(Text)
    published: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    text: Mapped[str] = mapped_column(Text)


def bounded(result: ResultT, what: str, limit: int = RESULT_BYTES) -> ResultT:
    """``result``, or a final error naming ``what`` and the limit when its JSON is larger:
    Temporal refuses payloads over 2 MiB, and a refused result would only be retried."""
    size = len(result.model_dump_json())
    if size > limit:
        raise error(
            ErrorClass.PROCESSING,
            f"{what}: the result is {size} bytes, over the limit of {limit} bytes for an activity result",
            non_retryable=True,
        )
    return result


def _batches(items: Iterable[Article], size: int) -> Iterator[list[Article]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def category_of(article: Article) -> Category:
    """The category whose lexicon the title (counted twice) and text use most; else general."""
    bag = words(article.title) * 2 + words(article.text)
    scores = {c: sum(w in terms for w in bag) for c, terms in CATEGORY_TERMS.items()}
    best = max(scores, key=lambda c: (scores[c], -CATEGORIES.index(c)))
    return best if scores[best] > 0 else "general"


class _Summaries(RootModel[list[DigestArticle]]):
    """The summaries as one model, to measure them."""


class _LLMCategories(BaseModel):
    categories: list[Category]


def categories_prompt(articles: list[Article]) -> str:
    """One call for the batch: a category per numbered article."""
    listing = "\n".join(f"{n}. {a.title}: {a.text[:300]}" for n, a in enumerate(articles, start=1))
    return (
        f"Put each numbered article in one category: {', '.join(CATEGORIES)}. Answer with JSON only: "
        f'{{"categories": [one category per article, in order]}}.\n\n{listing}'
    )


def categories_of_answer(raw: str, count: int) -> list[Category]:
    """The model's categories, one per article; ``ValueError`` when they are not."""
    found = re.search(r"\{.*\}", raw, re.DOTALL)
    categories = _LLMCategories.model_validate_json(found.group(0) if found else raw).categories
    if len(categories) != count:
        raise ValueError(f"{len(categories)} categories for {count} articles: {raw[:200]}")
    return categories


def summary_prompt(article: Article, sentences: int) -> str:
    return (
        f"Summarise this news article in at most {sentences} sentences of plain text, using only "
        f"facts it states. Answer with the summary only.\n\nTitle: {article.title}\n\n{article.text[:ARTICLE_CHARS]}"
    )


def summary_of_answer(raw: str) -> str:
    """The model's summary on one line; ``ValueError`` when it is empty."""
    text = " ".join(raw.split())
    if not text:
        raise ValueError("an empty summary")
    return text


def extractive_summary(article: Article, sentences: int) -> str:
    """The article's most central sentences (TextRank), or its title when it has no text."""
    return " ".join(textrank(split_sentences(article.text), sentences) if article.text else []) or article.title


def _resumed_progress() -> dict[str, Any]:
    """What an earlier attempt of this activity recorded in its heartbeats, else nothing."""
    last = activity.info().heartbeat_details if activity.in_activity() else []
    if len(last) == 1 and isinstance(last[0], dict) and isinstance(last[0].get("summaries"), dict):
        return last[0]
    return {"categories": None, "summaries": {}}


def newsletter_of(request: NewsletterInput) -> Newsletter:
    """The newsletter in Markdown and in HTML, articles grouped by category."""
    day = request.date.strftime("%Y-%m-%d")
    md = [f"# {request.title}", "", f"{day} - {len(request.articles)} new articles", ""]
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(request.title)} {day}</title></head><body>",
        f"<h1>{html.escape(request.title)}</h1>",
        f"<p>{day} - {len(request.articles)} new articles</p>",
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
            page += [
                f"<h3>{heading}</h3>",
                f"<p><em>{html.escape(a.source)}</em></p>",
                f"<p>{html.escape(a.summary)}</p>",
            ]
    page.append("</body></html>")
    return Newsletter(markdown="\n".join(md).rstrip() + "\n", html="\n".join(page) + "\n")


class NewsActivities:
    """Bound to the database and the document roots (where file feeds may be read)."""

    def __init__(
        self,
        db: Database,
        settings: DocumentSettings | None = None,
        llm: LLM | None = None,
        feeds: FeedSettings | None = None,
    ) -> None:
        """``llm`` (default: one configured by the environment) asks the model for
        summaries and categories (unless a digest asks for the offline lexicon)."""
        self._db = db
        self._llm = llm or LLM(db)
        # Feed files may be read from the feed roots and the document roots, tried in that order.
        self._roots = tuple(dict.fromkeys((feeds or FeedSettings()).roots + (settings or DocumentSettings()).roots))

    def _describe_roots(self) -> str:
        return f"{os.pathsep.join(map(str, self._roots))} (SAGAWORKS_FEED_ROOTS, then SAGAWORKS_DOCUMENT_ROOTS)"

    @contextmanager
    def _opened(self, feed: FeedSource) -> Iterator[tuple[IO[bytes], str]]:
        """The feed's bytes as a stream, and where they come from."""
        if feed.url.startswith(("http://", "https://")):
            with self._download(feed) as body:
                yield body, feed.url
        elif "://" in feed.url and not feed.url.startswith("file://"):
            raise validation_error("only http(s):// URLs and files are supported", field=feed.url)
        else:
            path = self._feed_file(feed)
            with path.open("rb") as body:
                yield body, str(path)

    def _feed_file(self, feed: FeedSource) -> Path:
        raw = feed.url.removeprefix("file://")
        candidates = [Path(raw)] if Path(raw).is_absolute() else [root / raw for root in self._roots]
        for candidate in candidates:
            path = candidate.resolve()
            if not any(path.is_relative_to(root) for root in self._roots):
                raise validation_error(f"outside the allowed feed roots: {self._describe_roots()}", field=feed.url)
            if path.is_file():
                if path.stat().st_size > feed.max_bytes:
                    raise validation_error(
                        f"{path.stat().st_size} bytes is over the feed's limit of {feed.max_bytes}", field=feed.url
                    )
                return path
        raise validation_error(f"file not found under {self._describe_roots()}", field=feed.url)

    def _download(self, feed: FeedSource) -> IO[bytes]:
        """The body, streamed into a temporary file (in memory up to :data:`SPOOL_BYTES`),
        refused once it passes the feed's limit."""
        import httpx

        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        try:
            with httpx.Client(
                timeout=feed.timeout_seconds, follow_redirects=True, headers={"User-Agent": USER_AGENT}
            ) as http:
                with http.stream("GET", feed.url) as response:
                    if response.status_code >= 400:
                        transient = response.status_code >= 500 or response.status_code in (408, 429)
                        raise error(
                            ErrorClass.EXTERNAL, f"{feed.url}: HTTP {response.status_code}", non_retryable=not transient
                        )
                    announced = int(response.headers.get("content-length") or 0)
                    if announced > feed.max_bytes:
                        raise validation_error(
                            f"announces {announced} bytes, over the feed's limit of {feed.max_bytes}", field=feed.url
                        )
                    for chunk in response.iter_bytes():
                        body.write(chunk)
                        if body.tell() > feed.max_bytes:
                            raise validation_error(f"over the feed's limit of {feed.max_bytes} bytes", field=feed.url)
        except httpx.TimeoutException as slow:
            body.close()
            raise error(
                ErrorClass.EXTERNAL, f"{feed.url}: no answer within {feed.timeout_seconds} s ({type(slow).__name__})"
            ) from None
        except httpx.HTTPError as broken:
            body.close()
            raise error(ErrorClass.EXTERNAL, f"{feed.url}: {type(broken).__name__}: {broken}") from None
        except BaseException:
            body.close()
            raise
        body.seek(0)
        return body

    @activity.defn
    def fetch_feed(self, feed: FeedSource) -> FeedArticles:
        """Fetch and parse one feed and store its articles (claim check: the selection reads
        them, and they are the fallback of a later failure); return what was stored."""
        with self._opened(feed) as (stream, where):
            reader = FeedReader(stream, feed.name, where, feed.max_entries)
            articles = list(reader)  # at most max_entries, each capped (activities/feed_reader.py)
        with database_errors(), self._db.transaction() as session:
            # Written first: a concurrent fetch of the same feed waits for this transaction.
            session.merge(FeedRow(url=feed.url, entries=len(articles), entries_not_read=reader.entries_not_read))
            session.flush()
            session.execute(delete(FeedArticleRow).where(FeedArticleRow.url == feed.url))
            for first in range(0, len(articles), STORE_BATCH):
                session.add_all(
                    FeedArticleRow(
                        url=feed.url,
                        position=position,
                        article_key=a.key,
                        guid=a.guid,
                        title=a.title,
                        link=a.link,
                        published=a.published,
                        text=a.text,
                    )
                    for position, a in enumerate(articles[first : first + STORE_BATCH], start=first)
                )
                session.flush()
        fetched = FeedArticles(
            feed=feed.name,
            fetched_from=where,
            stored_url=feed.url,
            entries=len(articles),
            entries_not_read=reader.entries_not_read,
        )
        return bounded(fetched, f"feed {feed.name} ({feed.url})")

    @activity.defn
    def cached_feed(self, feed: FeedSource) -> FeedArticles:
        """Fallback of :meth:`fetch_feed`: the articles its last successful fetch stored."""
        with database_errors(), self._db.transaction() as session:
            row = session.get(FeedRow, feed.url)
            cached = (
                None
                if row is None
                else FeedArticles(
                    feed=feed.name,
                    fetched_from="cache",
                    stored_url=feed.url,
                    entries=row.entries,
                    entries_not_read=row.entries_not_read,
                )
            )
        if cached is None:
            raise error(
                ErrorClass.EXTERNAL, f"{feed.url}: never fetched successfully, no cached copy", non_retryable=True
            )
        return bounded(cached, f"feed {feed.name} ({feed.url})")

    def _articles_of(self, session: Session, request: SelectInput) -> Iterator[Article]:
        """The request's inline articles, then each stored feed's, read a batch at a time."""
        yield from request.articles
        columns = (
            FeedArticleRow.article_key,
            FeedArticleRow.guid,
            FeedArticleRow.title,
            FeedArticleRow.link,
            FeedArticleRow.published,
            FeedArticleRow.text,
        )
        for feed in request.stored:
            rows = session.execute(
                select(*columns).where(FeedArticleRow.url == feed.url).order_by(FeedArticleRow.position),
                execution_options={"yield_per": STORE_BATCH},
            )
            for key, guid, title, link, published, text in rows:
                yield Article(
                    key=key,
                    guid=guid,
                    title=title,
                    link=link,
                    source=feed.name,
                    text=text,
                    published=published if published is None or published.tzinfo else published.replace(tzinfo=UTC),
                )

    @activity.defn
    def select_articles(self, request: SelectInput) -> Selection:
        """Relevant articles no stored digest published yet, newest first, at most the limit
        and at most :data:`SELECTION_BYTES` of them; the rest are counted as over the limit.

        Reads the stored feeds a batch at a time and keeps only the newest candidates, so
        its memory does not grow with the feeds' size."""
        patterns = [re.compile(rf"\b{re.escape(k)}\b", re.IGNORECASE) for k in request.keywords if k.strip()]
        unique: set[str] = set()
        newest: list[tuple[tuple[datetime, str], Article]] = []  # a min-heap of the newest fresh articles
        duplicates = irrelevant = seen = fresh = 0
        oldest = datetime.min.replace(tzinfo=UTC)
        with database_errors(), self._db.transaction() as session:
            for batch in _batches(self._articles_of(session, request), STORE_BATCH):
                relevant = []
                for article in batch:
                    if article.key in unique:
                        duplicates += 1
                    elif patterns and not any(p.search(f"{article.title} {article.text}") for p in patterns):
                        irrelevant += 1
                    else:
                        unique.add(article.key)
                        relevant.append(article)
                claimed = set(
                    session.scalars(
                        select(SeenArticleRow.article_key).where(
                            SeenArticleRow.article_key.in_([a.key for a in relevant])
                        )
                    )
                )
                for article in relevant:
                    if article.key in claimed:
                        seen += 1
                        continue
                    fresh += 1
                    entry = ((article.published or oldest, article.key), article)
                    if len(newest) < request.max_articles:
                        heapq.heappush(newest, entry)
                    elif entry[0] > newest[0][0]:
                        heapq.heapreplace(newest, entry)
        chosen: list[Article] = []
        size = 0
        for _, article in sorted(newest, key=lambda entry: entry[0], reverse=True):
            size += len(article.model_dump_json())
            if chosen and size > SELECTION_BYTES:
                break
            chosen.append(article)
        selection = Selection(
            articles=chosen,
            seen_before=seen,
            irrelevant=irrelevant,
            duplicates=duplicates,
            over_limit=fresh - len(chosen),
        )
        return bounded(selection, "select_articles")

    @activity.defn
    def categorise_and_summarise(self, request: SummariseInput) -> list[DigestArticle]:
        """Each article categorised and summarised, saying by what.

        Categories (one call for the batch) and summaries (one call per article) are the
        model's whenever the worker has one for the family, else the lexicon's and 2-3
        TextRank sentences; ``categoriser="offline"`` keeps the lexicon even then. The
        lexicon and the extractive summary are also each call's fallback (the LLM gateway's breaker open,
        its budget spent past the step's deadline...). The heartbeats carry what is done,
        so a retry (after the budget's wait) asks nothing twice.
        """
        llm, articles, sentences = self._llm, request.articles, request.sentences
        if request.categoriser == "llm" and not llm.configured(FAMILY):
            raise validation_error(
                "no LLM is configured on the worker (SAGAWORKS_LLM_PROVIDER, GROQ_API_KEY)", field="categoriser"
            )
        progress = _resumed_progress()
        # By article key: [summary, who wrote it, why a fallback stands in or None]; a list, as
        # the heartbeat details give it back.
        summaries: dict[str, list[Any]] = progress["summaries"]
        # The keep-alive thread sends a copy: the dict changes in this thread meanwhile.
        sent = [copy.deepcopy(progress)]

        def record() -> None:
            sent[0] = copy.deepcopy(progress)
            if activity.in_activity():
                activity.heartbeat(sent[0])

        def lexicon() -> list[Category]:
            return [category_of(a) for a in articles]

        with keep_alive(details=lambda: sent):
            if progress["categories"] is None:
                # Unset asks the model too: without one configured, ask() answers with
                # the lexicon at once (provider "offline", no fallback to report).
                if request.categoriser != "offline":
                    asked = llm.ask(
                        FAMILY,
                        categories_prompt(articles),
                        json_mode=True,
                        parse=lambda raw: categories_of_answer(raw, len(articles)),
                        fallback=lexicon,
                        max_tokens=CATEGORIES_TOKENS + CATEGORY_TOKENS * len(articles),
                    )
                    by = asked.provider if asked.provider != "offline" else "lexicon"
                    progress["categories"] = [asked.value, by, asked.fallback]
                else:
                    progress["categories"] = [lexicon(), "lexicon", None]
                record()
            categories, categorised_by, categories_fallback = progress["categories"]
            for a in articles:
                if a.key not in summaries:
                    answer = llm.ask(
                        FAMILY,
                        summary_prompt(a, sentences),
                        max_tokens=SUMMARY_TOKENS,
                        parse=summary_of_answer,
                        fallback=partial(extractive_summary, a, sentences),
                    )
                    by = answer.provider if answer.provider != "offline" else "extractive"
                    summaries[a.key] = [answer.value, by, answer.fallback]
                    record()
        out = []
        for a, category in zip(articles, categories, strict=True):
            summary, summarised_by, summary_fallback = summaries[a.key]
            reasons = [r for r in (categories_fallback, summary_fallback) if r]
            out.append(
                DigestArticle(
                    key=a.key,
                    title=a.title,
                    link=a.link,
                    source=a.source,
                    published=a.published,
                    category=category,
                    summary=summary,
                    summarised_by=summarised_by,
                    categorised_by=categorised_by,
                    fallback="; ".join(dict.fromkeys(reasons)) or None,
                )
            )
        return bounded(_Summaries(out), "categorise_and_summarise").root

    @activity.defn
    def build_newsletter(self, request: NewsletterInput) -> Newsletter:
        """The newsletter in Markdown and HTML."""
        return bounded(newsletter_of(request), "build_newsletter")

    @activity.defn
    def store_digest(self, request: StoreDigestInput) -> str:
        """Store the newsletter and claim its articles, in one transaction (idempotent).

        An article is claimed once: when a digest that ran at the same time claimed one of
        these first, nothing is stored and the error (``ArticlesAlreadyPublished``, final)
        lists the claimed keys, for the workflow to leave them out. A restart may publish
        again what its source run published (``takes_over``): the claims become its own.
        """
        keys = list(dict.fromkeys(request.article_keys))
        with database_errors(), self._db.transaction() as session:
            if session.get(DigestRow, request.digest_key) is not None:
                return request.digest_key
            claims = {
                row.article_key: row
                for row in session.scalars(select(SeenArticleRow).where(SeenArticleRow.article_key.in_(keys)))
            }
            taken = [k for k, row in claims.items() if row.digest_key not in (request.digest_key, request.takes_over)]
            if taken:
                raise ApplicationError(
                    f"{len(taken)} of the digest's {len(keys)} articles were published by another digest first",
                    taken,
                    type=ALREADY_PUBLISHED,
                    non_retryable=True,
                )
            session.add(
                DigestRow(
                    digest_key=request.digest_key,
                    name=request.name,
                    markdown=request.newsletter.markdown,
                    html=request.newsletter.html,
                )
            )
            for row in claims.values():
                row.digest_key = request.digest_key
            # Two digests claiming the same article at once: the primary key lets one commit;
            # the other's transaction fails, is retried, and then finds the claim above.
            session.add_all(
                SeenArticleRow(article_key=k, digest_key=request.digest_key) for k in keys if k not in claims
            )
        return request.digest_key
