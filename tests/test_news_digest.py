"""The news-digest family: hostile and broken feeds fail alone, articles are never
repeated across stored digests, and the Temporal Schedule skips overlapping runs."""

from __future__ import annotations

import asyncio
import html
import io
import json
import shutil
import time
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from sagaworks import registry
from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.activities.feed_reader import MAX_TEXT_CHARS, MAX_TITLE_CHARS, FeedReader
from sagaworks.activities.news import (
    CATEGORIES_TOKENS,
    CATEGORY_TOKENS,
    SUMMARY_TOKENS,
    DigestRow,
    SeenArticleRow,
    bounded,
)
from sagaworks.client.schedules import create_schedule, delete_schedule, describe_schedule, trigger_schedule
from sagaworks.contracts.news_digest import FeedSource, NewsDigestInput, NewsDigestResult, Newsletter, Selection
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES
from sagaworks.workflows.news_digest import NewsDigestWorkflow
from tests.fake_chat_server import FakeChatServer, Reply
from tests.feed_server import BOMB, feed_server, large_feed
from tests.orders import wait_for_status

FEEDS = SAMPLES / "feeds"
NEWS = registry().family("news-digest")
NEVER = "0 0 1 1 *"
"""A cron that does not fire during a test: runs come from triggers only."""


def _copy_feeds(tmp_path: Path) -> Path:
    folder = tmp_path / "feeds"
    shutil.copytree(FEEDS, folder)
    return folder


def _add_items(feed: Path, *titles: str) -> None:
    items = "".join(
        f"<item><title>{t}</title><link>https://engineering-weekly.example.org/new/{i}</link>"
        f'<guid isPermaLink="false">new-{i}-{t[:10]}</guid><pubDate>Mon, 23 Nov 2026 07:00:00 GMT</pubDate>'
        f"<description>{t}. A developer team shipped it to production this "
        "week. The release notes list the changes.</description></item>"
        for i, t in enumerate(titles)
    )
    feed.write_text(feed.read_text().replace("</channel>", items + "</channel>"))


async def _run(client: Client, task_queue: str, request: NewsDigestInput) -> NewsDigestResult:
    handle = await client.start_workflow(
        NewsDigestWorkflow.run, request, id=f"nd-{uuid.uuid4()}", task_queue=task_queue
    )
    return await asyncio.wait_for(handle.result(), 120)


def test_the_entity_expansion_bomb_is_refused_before_any_parser_expands_it() -> None:
    started = time.perf_counter()
    with pytest.raises(Exception, match="declares XML entities") as refused:
        list(FeedReader(io.BytesIO(BOMB), "bomb", "bomb.xml", 1000))
    assert refused.value.non_retryable  # type: ignore[attr-defined]  # the refusal is an ApplicationError
    assert time.perf_counter() - started < 5  # 10^9 expansions would take minutes and gigabytes


def test_an_oversize_activity_result_is_a_final_error_naming_what_and_the_limit() -> None:
    selection = Selection(articles=[], seen_before=0, irrelevant=0, duplicates=0, over_limit=0)
    assert bounded(selection, "select_articles") is selection
    with pytest.raises(ApplicationError) as refused:
        bounded(Newsletter(markdown="x" * 2000, html=""), "feed big (https://big.example)", limit=1024)
    assert refused.value.non_retryable and refused.value.type == "ProcessingError"
    assert (
        "feed big (https://big.example): the result is 2025 bytes, over the limit of 1024 bytes"
        in refused.value.message
    )


def test_a_feed_is_read_up_to_its_max_entries_and_the_rest_counted() -> None:
    reader = FeedReader(io.BytesIO(large_feed(2500)), "large", "large.xml", max_entries=1000)
    articles = list(reader)
    assert len(articles) == 1000 and reader.entries == 2500 and reader.entries_not_read == 1500
    assert articles[0].title == "Release 2499 of the platform"  # document order: the newest first


def test_an_entry_is_capped_whatever_its_size() -> None:
    huge = "<p>" + "word " * 2_000_000 + "</p>"
    feed = (
        f'<rss version="2.0"><channel><item><title>{"T" * 5000}</title><link>https://x.example/{"a" * 3000}</link>'
        f"<guid>g-1</guid><description>{html.escape(huge)}</description></item></channel></rss>"
    )
    [article] = FeedReader(io.BytesIO(feed.encode()), "x", "x.xml", 10)
    assert len(article.title) == MAX_TITLE_CHARS and article.link == "" and len(article.text) == MAX_TEXT_CHARS


def test_an_unreadable_date_leaves_the_article_undated() -> None:
    dates = ["9999-12-31T23:59:59-01:00", "next Tuesday", "Mon, 23 Nov 2026 07:00:00 GMT", "2026-11-17T09:00:00+02:00"]
    items = "".join(f"<item><guid>d-{n}</guid><pubDate>{d}</pubDate></item>" for n, d in enumerate(dates))
    articles = list(
        FeedReader(io.BytesIO(f'<rss version="2.0"><channel>{items}</channel></rss>'.encode()), "x", "x.xml", 10)
    )
    assert [a.published.isoformat() if a.published else None for a in articles] == [
        None,
        None,
        "2026-11-23T07:00:00+00:00",
        "2026-11-17T07:00:00+00:00",
    ]


def test_every_sample_feed_format_parses() -> None:
    counts = {
        p.name: len(list(FeedReader(io.BytesIO(p.read_bytes()), p.stem, str(p), 1000)))
        for p in sorted(FEEDS.glob("*.xml"))
    }
    assert counts == {"engineering-weekly.rss.xml": 4, "market-pulse.atom.xml": 3, "research-notes.rdf.xml": 2}


async def test_broken_feeds_fail_alone_and_the_digest_is_built_from_the_rest(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    with feed_server(_copy_feeds(tmp_path)) as server:
        feeds = [
            FeedSource(name="good", url=server.url("feeds/engineering-weekly.rss.xml")),
            FeedSource(name="empty", url=server.url("empty")),
            FeedSource(name="malformed", url=server.url("malformed")),
            FeedSource(name="missing", url=server.url("missing")),
            FeedSource(name="slow", url=server.url("slow"), timeout_seconds=1),
            FeedSource(name="huge", url=server.url("huge")),
            FeedSource(name="bomb", url=server.url("bomb")),
            FeedSource(name="file", url=str(FEEDS / "research-notes.rdf.xml")),
        ]
        settings = DocumentSettings(roots=(SAMPLES,))
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=8, settings=[settings]):
            result = await _run(dev_client, task_queue, NewsDigestInput(name="broken", feeds=feeds))

    status = {name: outcome.status for name, outcome in result.feeds.items()}
    assert status == {
        "good": "ok",
        "empty": "ok",
        "file": "ok",
        "malformed": "unavailable",
        "missing": "unavailable",
        "slow": "unavailable",
        "huge": "unavailable",
        "bomb": "unavailable",
    }
    errors = {name: result.feeds[name].error or "" for name in result.failed_feeds}
    assert "not well-formed XML" in errors["malformed"]
    assert "HTTP 404" in errors["missing"]
    assert "no answer within 1.0 s" in errors["slow"]
    assert "over the feed's limit of 5242880 bytes" in errors["huge"]
    assert "declares XML entities" in errors["bomb"]
    assert all("no cached copy" in e for e in errors.values())  # the fallback had nothing either
    assert server.huge_bytes_sent and server.huge_bytes_sent[0] < 50 * 2**20  # the download stopped early
    assert len(result.articles) == 6 and result.stored
    assert {a.source for a in result.articles} == {"good", "file"}
    assert all(2 <= len(a.summary.split(". ")) <= 3 or a.summary == a.title for a in result.articles)
    assert "## Technology" in result.newsletter.markdown and "<h2>Research</h2>" in result.newsletter.html  # type: ignore[union-attr]  # a completed digest has its newsletter


async def test_the_sample_digest_reads_its_feeds_with_the_default_settings(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAGAWORKS_FEED_ROOTS", raising=False)
    monkeypatch.delenv("SAGAWORKS_DOCUMENT_ROOTS", raising=False)
    request = NEWS.sample_input("news-digest/weekly.json")
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        result = await _run(dev_client, task_queue, request)
    assert {name: outcome.status for name, outcome in result.feeds.items()} == dict.fromkeys(
        ("Engineering Weekly", "Market Pulse", "Research Notes"), "ok"
    )
    assert result.stored and len(result.articles) == 9


async def test_a_digest_whose_every_feed_failed_fails_naming_each_feed(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    feeds = [FeedSource(name="gone", url="no-such-feed.xml"), FeedSource(name="elsewhere", url="/etc/hostname")]
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        with pytest.raises(WorkflowFailureError) as failed:
            await _run(dev_client, task_queue, NewsDigestInput(name="nothing", feeds=feeds))
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NoFeedAvailable" and cause.non_retryable
    assert "none of the 2 feeds could be read" in cause.message
    assert "gone: InvalidInput: no-such-feed.xml: file not found under" in cause.message
    assert "elsewhere: InvalidInput: /etc/hostname: outside the allowed feed roots" in cause.message


async def test_a_feed_of_10000_entries_is_stored_not_carried_and_falls_back_to_its_stored_copy(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    with feed_server(_copy_feeds(tmp_path)) as server:
        feed = FeedSource(name="large", url=server.url("large"))
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
            first = await _run(dev_client, task_queue, NewsDigestInput(name="large", feeds=[feed], max_articles=10))
            broken = feed.model_copy(update={"max_bytes": 1024})  # the same feed, now refused as too large
            second = await _run(dev_client, task_queue, NewsDigestInput(name="large", feeds=[broken], max_articles=10))
    assert first.feeds["large"].status == "ok" and first.entries_not_read == {"large": 9000}
    assert [a.title for a in first.articles][:2] == ["Release 9999 of the platform", "Release 9998 of the platform"]
    assert first.over_limit == 990 and first.stored
    # The fallback reads the stored copy: the next ten articles.
    assert second.feeds["large"].status == "fallback" and second.seen_before == 10
    assert [a.title for a in second.articles][0] == "Release 9989 of the platform"


async def test_a_failed_feed_falls_back_to_its_last_good_copy(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    folder = _copy_feeds(tmp_path)
    with feed_server(folder) as server:
        feed = FeedSource(name="weekly", url=server.url("feeds/engineering-weekly.rss.xml"))
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
            first = await _run(
                dev_client, task_queue, NewsDigestInput(name="cache", feeds=[feed], keywords=["postgres"])
            )
            (folder / "engineering-weekly.rss.xml").unlink()  # now a 404
            second = await _run(dev_client, task_queue, NewsDigestInput(name="cache", feeds=[feed]))
    assert [a.title for a in first.articles] == ["Postgres 18 release adds asynchronous I/O"]
    assert first.irrelevant == 3
    assert second.feeds["weekly"].status == "fallback" and second.feeds["weekly"].activity == "cached_feed"
    # From the cache: the three articles the first digest did not publish.
    assert len(second.articles) == 3 and second.seen_before == 1


async def test_two_scheduled_runs_the_second_holds_exactly_the_two_new_articles(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    folder = _copy_feeds(tmp_path)
    with feed_server(folder) as server:
        request = NewsDigestInput(
            name=f"sched-{uuid.uuid4().hex[:8]}",
            feeds=[
                FeedSource(name="Engineering Weekly", url=server.url("feeds/engineering-weekly.rss.xml")),
                FeedSource(name="Market Pulse", url=server.url("feeds/market-pulse.atom.xml")),
            ],
        )
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
            schedule = await create_schedule(dev_client, NEWS, request, cron=NEVER, task_queue=task_queue)
            try:
                first = await _scheduled_run(dev_client, schedule.id, 1)
                _add_items(
                    folder / "engineering-weekly.rss.xml", "Rust 2.0 compiler released", "New Python JIT benchmark"
                )
                second = await _scheduled_run(dev_client, schedule.id, 2)
            finally:
                await delete_schedule(dev_client, schedule.id)

    assert len(first.articles) == 7 and first.stored
    assert sorted(a.title for a in second.articles) == ["New Python JIT benchmark", "Rust 2.0 compiler released"]
    assert second.seen_before == 7
    assert second.newsletter is not None and "Rust 2.0 compiler released" in second.newsletter.markdown
    assert "Postgres 18" not in second.newsletter.markdown
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(DigestRow)) == 2
        assert session.scalar(select(func.count()).select_from(SeenArticleRow)) == 9


async def _scheduled_run(client: Client, schedule_id: str, nth: int) -> NewsDigestResult:
    await trigger_schedule(client, schedule_id)

    async def started() -> dict:
        while True:
            info = await describe_schedule(client, schedule_id)
            if len(info["recent"]) >= nth:
                return info["recent"][nth - 1]
            await asyncio.sleep(0.1)

    action = await asyncio.wait_for(started(), 60)
    handle = client.get_workflow_handle(action["workflow_id"], run_id=action["run_id"], result_type=NewsDigestResult)
    return await asyncio.wait_for(handle.result(), 120)


async def test_a_trigger_while_a_digest_runs_is_skipped(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    with feed_server(_copy_feeds(tmp_path)) as server:
        request = NewsDigestInput(
            name=f"overlap-{uuid.uuid4().hex[:8]}",
            feeds=[FeedSource(name="slow", url=server.url("slow"), timeout_seconds=60)],
        )
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
            schedule = await create_schedule(dev_client, NEWS, request, cron=NEVER, task_queue=task_queue)
            try:
                await trigger_schedule(dev_client, schedule.id)

                async def described(predicate):
                    while not predicate(info := await describe_schedule(dev_client, schedule.id)):
                        await asyncio.sleep(0.1)
                    return info

                running = await asyncio.wait_for(described(lambda i: i["running"]), 60)
                await trigger_schedule(dev_client, schedule.id)
                skipped = await asyncio.wait_for(described(lambda i: i["skipped_overlap"] >= 1), 60)
                server.release_slow.set()
                handle = dev_client.get_workflow_handle(running["running"][0], result_type=NewsDigestResult)
                result = await asyncio.wait_for(handle.result(), 60)
                after = await describe_schedule(dev_client, schedule.id)
            finally:
                await delete_schedule(dev_client, schedule.id)
    assert skipped["actions"] == 1 and skipped["skipped_overlap"] == 1
    assert after["actions"] == 1 and result.feeds["slow"].status == "ok" and not result.stored


async def test_concurrent_digests_over_one_feed_publish_each_article_once(
    dev_client: Client, db_url: str, task_queue: str, tmp_path: Path
) -> None:
    backend = Database(db_url)
    feed = FeedSource(name="weekly", url=str(_copy_feeds(tmp_path) / "engineering-weekly.rss.xml"))
    settings = DocumentSettings(roots=(tmp_path,))
    try:
        async with running_worker(dev_client, backend, task_queue=task_queue, activity_threads=8, settings=[settings]):
            results = await asyncio.gather(
                *(_run(dev_client, task_queue, NewsDigestInput(name=f"race-{n}", feeds=[feed])) for n in range(6))
            )
        with backend.transaction() as session:
            stored = list(session.scalars(select(DigestRow.markdown)))
            claims = session.scalar(select(func.count()).select_from(SeenArticleRow))
    finally:
        backend.dispose()
    published = [a.title for r in results for a in r.articles]
    assert sorted(published) == sorted(set(published)) and len(published) == 4
    assert len(stored) == sum(r.stored for r in results) and claims == 4
    for title in published:  # in exactly one stored newsletter
        assert sum(title in markdown for markdown in stored) == 1
    # Each digest that published nothing says why: seen in a stored digest, or claimed first by one.
    assert all(r.stored or r.seen_before + r.published_elsewhere == 4 for r in results)


async def test_a_digest_leaves_out_what_a_concurrent_one_published_and_stores_the_rest(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json as jsonlib
    import threading

    from tests.fake_chat_server import completion, fake_chat_server

    release = threading.Event()

    def respond(body, _index):
        # Holds both digests in their categorise step, after both selected.
        release.wait(60)
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("Summarise"):
            return 200, {}, completion("A summary by the model.")
        count = len([line for line in prompt.splitlines() if line[:1].isdigit()])
        return 200, {}, completion(jsonlib.dumps({"categories": ["research"] * count}))

    notes = FeedSource(name="notes", url=str(FEEDS / "research-notes.rdf.xml"))
    market = FeedSource(name="market", url=str(FEEDS / "market-pulse.atom.xml"))
    with fake_chat_server(respond) as server:
        monkeypatch.setenv("GROQ_API_KEY", "test-key")
        monkeypatch.setenv("GROQ_BASE_URL", server.base_url)
        monkeypatch.delenv("SAGAWORKS_LLM_PROVIDER", raising=False)
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
            first = await dev_client.start_workflow(
                NewsDigestWorkflow.run,
                NewsDigestInput(name="first", feeds=[notes], categoriser="llm"),
                id=f"nd-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            second = await dev_client.start_workflow(
                NewsDigestWorkflow.run,
                NewsDigestInput(name="second", feeds=[notes, market], categoriser="llm"),
                id=f"nd-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            for handle in (first, second):  # both selected the two research notes
                await wait_for_status(handle, lambda s: s.current_step == "summarise", query=NewsDigestWorkflow.status)
            await second.signal(NewsDigestWorkflow.pause)
            await wait_for_status(second, lambda s: s.state == "paused", query=NewsDigestWorkflow.status)
            release.set()
            won = await asyncio.wait_for(first.result(), 60)
            await second.signal(NewsDigestWorkflow.resume)
            rest = await asyncio.wait_for(second.result(), 60)
    assert won.stored and len(won.articles) == 2
    assert rest.stored and rest.published_elsewhere == 2 and rest.seen_before == 0
    assert {a.source for a in rest.articles} == {"market"} and len(rest.articles) == 3
    assert rest.newsletter is not None and "3 new articles" in rest.newsletter.markdown
    assert not any(a.title in rest.newsletter.markdown for a in won.articles)
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SeenArticleRow)) == 5


async def test_cancel_while_fetching(dev_client: Client, db: Database, task_queue: str, tmp_path: Path) -> None:
    with feed_server(_copy_feeds(tmp_path)) as server:
        request = NewsDigestInput(feeds=[FeedSource(name="slow", url=server.url("slow"), timeout_seconds=60)])
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
            handle = await dev_client.start_workflow(
                NewsDigestWorkflow.run, request, id=f"nd-{uuid.uuid4()}", task_queue=task_queue
            )
            await wait_for_status(handle, lambda s: s.current_step == "fetch", query=NewsDigestWorkflow.status)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await asyncio.wait_for(handle.result(), 60)
            assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
            server.release_slow.set()


async def test_the_llm_categorises_when_asked(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json as jsonlib

    from tests.fake_chat_server import completion, fake_chat_server

    def respond(body, _index):
        if body["messages"][-1]["content"].startswith("Summarise"):
            return 200, {}, completion("A summary by the model.")
        return 200, {}, completion(jsonlib.dumps({"categories": ["research", "business"]}))

    feed = FeedSource(name="research", url=str(FEEDS / "research-notes.rdf.xml"))
    with fake_chat_server(respond) as server:
        monkeypatch.setenv("GROQ_API_KEY", "test-key")
        monkeypatch.setenv("GROQ_BASE_URL", server.base_url)
        monkeypatch.delenv("SAGAWORKS_LLM_PROVIDER", raising=False)
        settings = DocumentSettings(roots=(SAMPLES,))
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
            result = await _run(dev_client, task_queue, NewsDigestInput(name="llm", feeds=[feed], categoriser="llm"))
        prompt = server.prompt_of(0)
    # Newest first: the retry-storms paper (19 Nov), then the replay study (17 Nov).
    assert [(a.title[:5], a.category) for a in result.articles] == [("Paper", "research"), ("Study", "business")]
    assert "1. Paper measures retry storms" in prompt
    # With a model configured the summaries are the model's too, through the same gateway.
    assert {(a.categorised_by, a.summarised_by, a.summary, a.fallback) for a in result.articles} == {
        ("groq:llama-3.3-70b-versatile", "groq:llama-3.3-70b-versatile", "A summary by the model.", None)
    }


def _openai_model(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    from tests.fake_chat_server import model_for_family

    model_for_family(monkeypatch, "news-digest", base_url)


def _summaries_and_categories(body: dict[str, Any], _index: int) -> Reply:
    """The model's summary of the article a prompt names, or "business" for every article
    of a categories prompt (the lexicon puts none of the research notes there)."""
    from tests.fake_chat_server import completion

    prompt = body["messages"][-1]["content"]
    if "Title: " not in prompt:
        count = 0
        while f"\n{count + 1}. " in prompt:  # the articles are numbered from 1, a line each
            count += 1
        return 200, {}, completion(json.dumps({"categories": ["business"] * count}))
    title = prompt.split("Title: ")[1].splitlines()[0]
    return 200, {}, completion(f"The model's summary of {title}.")


async def _digest_of_the_research_notes_with_a_model(
    client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch, **fields: Any
) -> tuple[NewsDigestResult, FakeChatServer]:
    """A digest (``fields``) of the research notes on a worker whose model, an
    OpenAI-compatible endpoint configured for this family only, is the local chat server
    answering :func:`_summaries_and_categories`; the result and what the server saw."""
    from tests.fake_chat_server import fake_chat_server

    feed = FeedSource(name="research", url=str(FEEDS / "research-notes.rdf.xml"))
    with fake_chat_server(_summaries_and_categories) as server:
        _openai_model(monkeypatch, server.base_url)
        async with running_worker(client, db, task_queue=task_queue, activity_threads=4):
            result = await _run(client, task_queue, NewsDigestInput(feeds=[feed], **fields))
    return result, server


async def test_with_a_model_configured_the_categories_and_summaries_are_the_models_through_the_gateway(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No per-input opt-in: the worker has a model, so the digest asks it.
    result, server = await _digest_of_the_research_notes_with_a_model(
        dev_client, db, task_queue, monkeypatch, name="summaries"
    )
    # One call for the batch's categories, one per article's summary.
    assert len(result.articles) == 2 and len(server.requests) == 3
    # The categories call allows the tokens two categories need, not a summary's or more.
    [categories] = [body for _, body in server.requests if "Title: " not in body["messages"][-1]["content"]]
    assert categories["max_tokens"] == CATEGORIES_TOKENS + 2 * CATEGORY_TOKENS < SUMMARY_TOKENS
    for article in result.articles:
        assert article.summary == f"The model's summary of {article.title}."
        assert (article.category, article.summarised_by, article.categorised_by, article.fallback) == (
            "business",
            "openai:local-model",
            "openai:local-model",
            None,
        )
    assert result.newsletter is not None and "The model's summary of Paper" in result.newsletter.markdown


async def test_categoriser_offline_keeps_the_lexicon_though_the_worker_has_a_model(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, server = await _digest_of_the_research_notes_with_a_model(
        dev_client, db, task_queue, monkeypatch, name="lexicon", categoriser="offline"
    )
    # The summaries only: nobody asked the model for categories.
    assert len(result.articles) == 2 and len(server.requests) == 2
    assert all("Title: " in server.prompt_of(n) for n in range(2))
    assert {(a.categorised_by, a.summarised_by) for a in result.articles} == {("lexicon", "openai:local-model")}
    assert "business" not in {a.category for a in result.articles}


async def test_a_5xx_storm_opens_the_llm_breaker_and_the_digest_falls_back_to_extractive_summaries(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.fake_chat_server import api_error, fake_chat_server

    feed = FeedSource(name="research", url=str(FEEDS / "research-notes.rdf.xml"))
    # The same digest without a model, in a database of its own (it marks the articles seen).
    offline_db = Database(f"sqlite:///{tmp_path / 'offline.db'}")
    async with running_worker(dev_client, offline_db, task_queue=task_queue, activity_threads=4):
        offline = await _run(dev_client, task_queue, NewsDigestInput(name="offline", feeds=[feed]))
    offline_db.dispose()
    with fake_chat_server(lambda _body, _index: api_error(503, "overloaded")) as server:
        _openai_model(monkeypatch, server.base_url)
        monkeypatch.setenv("SAGAWORKS_BREAKER_LLM", "1/60")
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
            result = await _run(dev_client, task_queue, NewsDigestInput(name="storm", feeds=[feed]))
    # The first call failed and opened the breaker; the retry asked the provider nothing.
    assert len(server.requests) == 1 and len(result.articles) == 2
    assert [(a.category, a.summary) for a in result.articles] == [(a.category, a.summary) for a in offline.articles]
    for article in result.articles:
        assert (article.categorised_by, article.summarised_by) == ("lexicon", "extractive")
        assert article.fallback is not None and article.fallback.startswith("breaker llm open")


def test_a_retry_after_the_budget_wait_keeps_the_summaries_the_model_already_wrote(db: Database) -> None:
    import dataclasses
    from datetime import datetime, timedelta

    from temporalio.testing import ActivityEnvironment

    from sagaworks import LLM, LLMBudget, LLMSettings
    from sagaworks.activities.news import NewsActivities
    from sagaworks.contracts.news_digest import Article, SummariseInput
    from tests.fake_chat_server import completion, fake_chat_server

    def respond(body, _index):
        prompt = body["messages"][-1]["content"]
        if "Title: " not in prompt:
            return 200, {}, completion('{"categories": ["research", "research"]}')
        title = prompt.split("Title: ")[1].splitlines()[0]
        return 200, {}, completion(f"Summary of {title}.")

    articles = [
        Article(
            key=f"k{n}",
            guid=f"g{n}",
            title=f"Article {n}",
            link="",
            source="s",
            published=None,
            text=f"Article {n} says something. It says more. And more again.",
        )
        for n in range(2)
    ]
    request = SummariseInput(articles=articles, sentences=2)
    with fake_chat_server(respond) as server:
        model = LLMSettings("openai", "test-model", f"{server.base_url}/v1")
        # One request per ten minutes: the categories take it, the first article's summary
        # must wait for the next window.
        first = ActivityEnvironment()
        first.info = dataclasses.replace(
            first.info, scheduled_time=datetime.now(UTC), schedule_to_close_timeout=timedelta(hours=1)
        )
        beats: list = []
        first.on_heartbeat = lambda *details: beats.append(details)
        spent = LLM(db, settings=model, budget=LLMBudget(requests=1, tokens=0, window_seconds=600))
        with pytest.raises(ApplicationError) as waits:
            first.run(NewsActivities(db, llm=spent).categorise_and_summarise, request)
        assert waits.value.next_retry_delay is not None and waits.value.next_retry_delay > timedelta(minutes=9)
        progress = beats[-1][0]
        # The retry, once the budget has room, asks only for what the first attempt did not get.
        retry = ActivityEnvironment()
        retry.info = dataclasses.replace(
            retry.info, attempt=2, heartbeat_details=[progress], schedule_to_close_timeout=None
        )
        roomy = LLM(db, settings=model, budget=LLMBudget(requests=0, tokens=0))
        summaries = retry.run(NewsActivities(db, llm=roomy).categorise_and_summarise, request)
    assert [s.summary for s in summaries] == ["Summary of Article 0.", "Summary of Article 1."]
    assert {(s.category, s.categorised_by, s.summarised_by) for s in summaries} == {
        ("research", "openai:test-model", "openai:test-model")
    }
    # The categories once, before the wait; the summaries after it.
    assert len(server.requests) == 3 and "Title: " not in server.prompt_of(0)
