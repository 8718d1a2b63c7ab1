"""The news-digest family: fetch every feed (one activity each), select new relevant
articles, categorise and summarise them, build the newsletter, store it.

A feed that is slow, broken, too large or hostile fails alone: its fetch runs under
:func:`workflows.fallback.with_fallback`, whose fallback is the feed's last good copy;
articles already published are dropped by the selection anyway. The articles of a digest
are recorded as seen only by the step that stores it, so a run that fails before storing
loses nothing. Run it on a Temporal Schedule (overlapping runs skipped):
``saga schedule create news-digest --cron "0 7 * * MON" --input FILE``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks.activities.news import NewsActivities
    from sagaworks.contracts.fallback import BranchOutcome
    from sagaworks.contracts.news_digest import (
        FeedSource,
        NewsDigestInput,
        NewsDigestResult,
        NewsDigestResume,
        NewsDigestStatus,
        NewsletterInput,
        Selection,
        SelectInput,
        StoreDigestInput,
        SummariseInput,
    )
    from sagaworks import policies
    from sagaworks import Pausable
    from sagaworks.workflows.fallback import with_fallback

STEPS = ("fetch", "select", "summarise", "newsletter", "store")


@workflow.defn
class NewsDigestWorkflow(Pausable):
    """One digest of the configured feeds, with only articles never published before."""

    def __init__(self) -> None:
        self._feeds_done = 0
        self._feeds_total = 0
        self._done = 0
        self._current: str | None = None

    async def _fetch(self, feed: FeedSource):  # -> (FeedArticles | None, BranchOutcome)
        options = policies.ActivityOptions(
            **policies.FEED_FETCH, start_to_close_timeout=timedelta(seconds=feed.timeout_seconds + 5)
        )
        fetched = await with_fallback(
            NewsActivities.fetch_feed, feed, options,
            fallback=NewsActivities.cached_feed, fallback_options=policies.DATABASE_WRITE, summary=feed.name,
        )
        self._feeds_done += 1
        return fetched

    async def _step(self, name: str) -> None:
        await self._unpaused()
        self._current = name

    @workflow.run
    async def run(self, request: NewsDigestInput) -> NewsDigestResult:
        """Return the digest's articles and newsletter, and how each feed fared."""
        self._feeds_total = len(request.feeds)
        # A restarted run (saga restart --from-stage ...) takes the outcomes of the stages
        # before it over from its source run instead of executing them (a run not
        # restarted has an empty resume point: it carries nothing).
        resume = request.resume or NewsDigestResume(from_stage="select", source_workflow_id="")
        outcomes: dict[str, BranchOutcome] = {}
        if resume.select is None:
            selection = await self._fetch_and_select(request, outcomes)
        else:
            selection = resume.select
            self._done += 2
        digest_articles, newsletter, digest_key = [], None, None
        if selection.articles:
            await self._step("summarise")
            digest_articles = resume.summarise or await workflow.execute_activity_method(
                NewsActivities.categorise_and_summarise,
                SummariseInput(
                    articles=selection.articles, sentences=request.summary_sentences, categoriser=request.categoriser
                ),
                **policies.PROCESSING,
            )
            self._done += 1
            await self._step("newsletter")
            newsletter = resume.newsletter or await workflow.execute_activity_method(
                NewsActivities.build_newsletter,
                NewsletterInput(title=request.title, date=workflow.now(), articles=digest_articles),
                **policies.PROCESSING,
            )
            self._done += 1
            await self._step("store")
            info = workflow.info()
            digest_key = await workflow.execute_activity_method(
                NewsActivities.store_digest,
                StoreDigestInput(
                    digest_key=f"{info.workflow_id}/{info.run_id}", name=request.name, newsletter=newsletter,
                    article_keys=[a.key for a in digest_articles],
                ),
                **policies.DATABASE_WRITE,
            )
            self._done += 1
        self._current = None
        self._state = "completed"
        return NewsDigestResult(
            name=request.name,
            stored=digest_key is not None,
            digest_key=digest_key,
            articles=digest_articles,
            newsletter=newsletter,
            feeds=outcomes,
            failed_feeds=[name for name, outcome in outcomes.items() if outcome.status != "ok"],
            seen_before=selection.seen_before,
            irrelevant=selection.irrelevant,
            duplicates=selection.duplicates,
            resumed_from=resume.source_workflow_id or None,
        )

    async def _fetch_and_select(self, request: NewsDigestInput, outcomes: dict[str, BranchOutcome]) -> Selection:
        """Fetch every feed at once (recording how each fared in ``outcomes``), then
        select the new relevant articles."""
        await self._step("fetch")
        fetched = await asyncio.gather(*(self._fetch(feed) for feed in request.feeds))
        outcomes.update({feed.name: outcome for feed, (_, outcome) in zip(request.feeds, fetched)})
        articles = [a for feed_articles, _ in fetched if feed_articles for a in feed_articles.articles]
        self._done += 1
        await self._step("select")
        selection = await workflow.execute_activity_method(
            NewsActivities.select_articles,
            SelectInput(articles=articles, keywords=request.keywords, max_articles=request.max_articles),
            **policies.DATABASE_WRITE,
        )
        self._done += 1
        return selection

    @workflow.query
    def status(self) -> NewsDigestStatus:
        """Feeds fetched so far and the step running."""
        return NewsDigestStatus(
            state=self._state, current_step=self._current, done=self._done, total=len(STEPS),
            feeds_done=self._feeds_done, feeds_total=self._feeds_total,
        )
