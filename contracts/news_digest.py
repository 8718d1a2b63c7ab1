"""Contracts of the news-digest family: fetch feeds, filter, categorise, summarise, publish."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from sagaworks import BranchOutcome, StageResume, StepStatus, StrictModel, Text

Category = Literal["technology", "business", "research", "general"]
CATEGORIES: tuple[Category, ...] = ("technology", "business", "research", "general")

NEWS_DIGEST_STEPS = ("select", "summarise", "newsletter", "store")
"""The digest's steps, in order (``saga restart ID --from STEP`` names one). Fetching the
feeds belongs to select: one activity per feed, and the articles are only its input."""

ALREADY_PUBLISHED = "ArticlesAlreadyPublished"
"""The error type of a store whose articles a concurrent digest claimed first; its
details are the claimed article keys."""


class FeedSource(StrictModel):
    """One feed: an ``http(s)://`` URL, or a file under the worker's feed or document roots."""

    name: Text = Field(min_length=1, max_length=100)
    url: Text = Field(min_length=1, max_length=2000)
    """``https://...``, ``http://...``, an absolute path, or a path relative to a feed root
    (``SAGAWORKS_FEED_ROOTS``, default the sample feeds) or, failing that, a document root."""
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    """Connect and read timeout of one fetch; the activity's own timeout adds five seconds."""
    max_bytes: int = Field(default=5 * 2**20, ge=1024, le=100 * 2**20)
    """Larger feeds are refused, as soon as that many bytes arrived (or were announced)."""
    max_entries: int = Field(default=1000, ge=1, le=10_000)
    """Entries read from the feed, in document order (feeds list the newest first); the
    rest are counted (``NewsDigestResult.entries_not_read``), never parsed."""


class NewsDigestInput(StrictModel):
    """A digest of several feeds; run it on a schedule (``saga schedule create news-digest``)."""

    name: Text = Field(default="news", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    """Names the digest: its workflow id and its newsletter's title."""
    title: Text = Field(default="News digest", max_length=200)
    feeds: list[FeedSource] = Field(min_length=1, max_length=100)
    keywords: list[Text] = Field(default_factory=list)
    """An article is relevant when its title or text has one of them (whole words, any
    case); empty: every article is."""
    max_articles: int = Field(default=30, ge=1, le=500)
    categoriser: Literal["offline", "llm"] | None = None
    """Unset: the worker's model (the LLM gateway's, the lexicon as its fallback) when one
    is configured (``SAGAWORKS_LLM_PROVIDER``...), else a lexicon per category;
    ``offline``: always the lexicon; ``llm``: the model, refused where none is configured.
    Summaries are the model's whenever the worker has one, extractive otherwise."""
    summary_sentences: int = Field(default=3, ge=2, le=3)
    resume: SkipJsonSchema[NewsDigestResume | None] = None
    """Set only in the inputs of runs restarted before the digest ran on the step runner
    (whose restart carries the earlier steps in the run's memo); kept so those inputs
    still decode and their histories replay. Not in the JSON schema (forms, OpenAPI);
    catalog parsing refuses it from callers."""


class Article(BaseModel):
    """One feed entry, its text as plain text."""

    key: str
    """SHA-256 of the entry's GUID (its link when it has none): what dedupe records."""
    guid: str
    title: str
    link: str
    source: str
    published: datetime | None
    text: str


class FeedArticles(BaseModel):
    """What a fetch stored: the articles stay in the application database (claim check),
    for the selection to read; the workflow's history carries only this."""

    feed: str
    articles: list[Article] = []
    """Only in runs recorded before the articles were stored: they carried them here."""
    fetched_from: str
    """The URL or file read, or ``cache`` when the fallback answered."""
    stored_url: str | None = None
    """The feed whose stored articles the selection reads (``news_feed_articles``)."""
    entries: int = 0
    """Articles stored."""
    entries_not_read: int = 0
    """Entries past the feed's ``max_entries``."""


class StoredFeed(StrictModel):
    name: str
    """The feed's name in this digest: its articles' ``source``."""
    url: str


class SelectInput(StrictModel):
    articles: list[Article] = []
    """Articles carried inline (runs whose fetches returned them); read before ``stored``."""
    stored: list[StoredFeed] = []
    """Feeds whose stored articles are read, in order."""
    keywords: list[str]
    max_articles: int


class Selection(BaseModel):
    articles: list[Article]
    seen_before: int
    """Articles already in an earlier stored digest."""
    irrelevant: int
    duplicates: int
    """The same article from two feeds (or twice in one)."""
    over_limit: int
    """New relevant articles left for a later digest: past ``max_articles``, or past the
    size a digest's articles may have (``activities.news.SELECTION_BYTES``)."""


class DigestArticle(BaseModel):
    key: str
    title: str
    link: str
    source: str
    published: datetime | None
    category: Category
    summary: str
    summarised_by: str = "extractive"
    """The model that wrote the summary (``<provider>:<model>``), or ``extractive``: 2-3
    TextRank sentences of the article (runs recorded before the LLM gateway all were)."""
    categorised_by: str = "lexicon"
    """The model that chose the category, or ``lexicon``."""
    fallback: str | None = None
    """Why the extractive summary or the lexicon stands in for the configured model
    (its breaker open, its budget spent past the step's deadline...); None when it did not."""


class SummariseInput(StrictModel):
    articles: list[Article]
    sentences: int
    categoriser: Literal["offline", "llm"] | None = None
    """As :attr:`NewsDigestInput.categoriser`: unset, the model when the worker has one."""


class Newsletter(BaseModel):
    markdown: str
    html: str


class NewsletterInput(StrictModel):
    title: str
    date: datetime
    articles: list[DigestArticle]


class StoreDigestInput(StrictModel):
    digest_key: str
    """Workflow id + run id: a retried store writes nothing twice."""
    name: str
    newsletter: Newsletter
    article_keys: list[str]
    takes_over: str | None = None
    """A restart's source run (workflow id/run id): articles its digest published may be
    published again by this one, which takes their claims over."""


class NewsDigestResume(StageResume):
    """How runs restarted before the step runner's restart carried the earlier steps: the
    selected articles, their summaries and the newsletter of the source run. Nothing sets
    it any more; old inputs still decode."""

    select: Selection | None = None
    summarise: list[DigestArticle] | None = None
    newsletter: Newsletter | None = None


class NewsDigestResult(BaseModel):
    name: str
    stored: bool
    """False when nothing new arrived: no newsletter is stored and nothing is marked seen."""
    digest_key: str | None
    articles: list[DigestArticle]
    newsletter: Newsletter | None
    feeds: dict[str, BranchOutcome]
    failed_feeds: list[str]
    seen_before: int
    irrelevant: int
    duplicates: int
    over_limit: int = 0
    """New relevant articles left for a later digest (see :attr:`Selection.over_limit`)."""
    entries_not_read: dict[str, int] = {}
    """Feeds with more entries than their ``max_entries``: how many were not read."""
    published_elsewhere: int = 0
    """Selected articles that a digest running at the same time published first: left out."""
    resumed_from: str | None = None
    """The run whose selection (and later outcomes) a restarted run took over; its feeds
    were fetched by that run, so :attr:`feeds` is empty."""


class NewsDigestStatus(StepStatus):
    """The steps' status (``current_step`` is ``fetch`` while the feeds are fetched), with
    the feeds fetched so far."""

    feeds_done: int
    feeds_total: int


NewsDigestInput.model_rebuild()
