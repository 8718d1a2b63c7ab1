"""The news-digest family: fetch every feed (one activity each), select new relevant
articles, categorise and summarise them, build the newsletter, store it; the steps after
the fetch run on the step runner.

A feed that is slow, broken, too large or hostile fails alone: its fetch runs under
:func:`sagaworks.with_fallback`, whose fallback is the feed's last good copy; articles
already published are dropped by the selection anyway. When no feed (nor its cached copy)
could be read the run fails, naming each feed's error. The articles of a digest are claimed
(recorded as seen) only by the step that stores it, in the same transaction, so a run that
fails before storing loses nothing; when a digest running at the same time claimed some of
them first, this one leaves those out and stores the rest. Run it on a Temporal Schedule
(overlapping runs skipped): ``saga schedule create news-digest --cron "0 7 * * MON" --input FILE``.

``saga restart ID --from STEP`` reuses the steps before STEP; the fetch belongs to the
select step (the articles are only the selection's input), so a restart after select
fetches nothing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from sagaworks import BranchOutcome, StepWorkflow, policies, with_fallback
    from sagaworks.activities.news import NewsActivities
    from sagaworks.contracts.news_digest import (
        ALREADY_PUBLISHED,
        NEWS_DIGEST_STEPS,
        DigestArticle,
        FeedArticles,
        FeedSource,
        NewsDigestInput,
        NewsDigestResult,
        NewsDigestStatus,
        Newsletter,
        NewsletterInput,
        SelectInput,
        Selection,
        StoredFeed,
        StoreDigestInput,
        SummariseInput,
    )

CLAIM_PATCH = "leave-out-articles-claimed-elsewhere"
"""Runs started before it stored a digest even when a concurrent one had published some of
its articles (and never met the refusal this handles)."""

NO_FEED_PATCH = "fail-when-no-feed-answered"
"""Runs started before it completed with an empty digest when every feed had failed."""


def _claimed_elsewhere(err: ActivityError) -> set[str] | None:
    """The article keys a refused store names as claimed by another digest; None for any other failure."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == ALREADY_PUBLISHED and cause.details:
        return set(cause.details[0])
    return None


@workflow.defn
class NewsDigestWorkflow(StepWorkflow):
    """One digest of the configured feeds, with only articles never published before."""

    def __init__(self) -> None:
        super().__init__()
        self._fetching = False
        self._feeds_done = 0
        self._feeds_total = 0
        self._entries_not_read: dict[str, int] = {}

    async def _fetch(self, feed: FeedSource) -> tuple[FeedArticles | None, BranchOutcome]:
        options = policies.ActivityOptions(
            **policies.FEED_FETCH, start_to_close_timeout=timedelta(seconds=feed.timeout_seconds + 5)
        )
        fetched = await with_fallback(
            NewsActivities.fetch_feed,
            feed,
            options,
            fallback=NewsActivities.cached_feed,
            fallback_options=policies.DATABASE_WRITE,
            summary=feed.name,
        )
        self._feeds_done += 1
        return fetched

    @workflow.run
    async def run(self, request: NewsDigestInput) -> NewsDigestResult:
        """Return the digest's articles and newsletter, and how each feed fared."""
        self._feeds_total = len(request.feeds)
        # Runs restarted before the step runner's restart carry the earlier steps'
        # outcomes in their input (``resume``); they take those over as they did.
        legacy = request.resume
        outcomes: dict[str, BranchOutcome] = {}
        digest_articles: list[DigestArticle] = []
        newsletter: Newsletter | None = None
        digest_key: str | None = None
        published_elsewhere = 0
        async with self.steps.plan(NEWS_DIGEST_STEPS) as steps:
            if legacy is not None and legacy.select is not None:
                selection = steps.taken_over("select", legacy.select)
            else:
                selection = await self._fetch_and_select(request, outcomes)
            if selection.articles:
                summarise = SummariseInput(
                    articles=selection.articles, sentences=request.summary_sentences, categoriser=request.categoriser
                )
                if legacy is not None and legacy.summarise is not None:
                    digest_articles = steps.taken_over("summarise", legacy.summarise)
                else:
                    digest_articles = await steps.run(
                        "summarise",
                        NewsActivities.categorise_and_summarise,
                        summarise,
                        options=policies.PROCESSING,
                        describe=lambda r: f"{len(r)} articles",
                    )
                if legacy is not None and legacy.newsletter is not None:
                    newsletter = steps.taken_over("newsletter", legacy.newsletter)
                else:
                    newsletter = await self._newsletter(request, digest_articles)
                restart = steps.restart
                takes_over = restart.source if restart is not None else (legacy.source_workflow_id if legacy else None)
                info = workflow.info()
                # Each refused store leaves out the articles another digest claimed first, so
                # this ends: stored, or nothing left to publish.
                while digest_articles and newsletter is not None:
                    store = StoreDigestInput(
                        digest_key=f"{info.workflow_id}/{info.run_id}",
                        name=request.name,
                        newsletter=newsletter,
                        article_keys=[a.key for a in digest_articles],
                        takes_over=takes_over or None,
                    )
                    try:
                        digest_key = await steps.run("store", NewsActivities.store_digest, store)
                        break
                    except ActivityError as err:
                        taken = _claimed_elsewhere(err) or set()
                        left = [a for a in digest_articles if a.key not in taken]
                        if len(left) == len(digest_articles) or not workflow.patched(CLAIM_PATCH):
                            raise
                    published_elsewhere += len(digest_articles) - len(left)
                    digest_articles = left
                    newsletter = await self._newsletter(request, digest_articles) if digest_articles else None
        restart = steps.restart
        resumed_from = restart.source if restart is not None else (legacy.source_workflow_id if legacy else None)
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
            over_limit=selection.over_limit,
            entries_not_read=self._entries_not_read,
            published_elsewhere=published_elsewhere,
            resumed_from=resumed_from or None,
        )

    async def _newsletter(self, request: NewsDigestInput, articles: list[DigestArticle]) -> Newsletter:
        return await self.steps.run(
            "newsletter",
            NewsActivities.build_newsletter,
            NewsletterInput(title=request.title, date=workflow.now(), articles=articles),
            options=policies.PROCESSING,
            describe=lambda r: f"{len(r.markdown)} characters of Markdown",
        )

    async def _fetch_and_select(self, request: NewsDigestInput, outcomes: dict[str, BranchOutcome]) -> Selection:
        """Fetch every feed at once (recording how each fared in ``outcomes``), then
        select the new relevant articles; a restart that reuses the selection fetches nothing."""
        steps = self.steps
        articles, stored = [], []
        if not steps.reuses("select"):
            await steps.unpaused()
            self._fetching = True
            fetched = await asyncio.gather(*(self._fetch(feed) for feed in request.feeds))
            self._fetching = False
            outcomes.update({feed.name: outcome for feed, (_, outcome) in zip(request.feeds, fetched, strict=True)})
            if all(outcome.status == "unavailable" for outcome in outcomes.values()) and workflow.patched(
                NO_FEED_PATCH
            ):
                # Nothing was read: an empty digest would look like a quiet week.
                reasons = "; ".join(f"{name}: {outcome.error}" for name, outcome in outcomes.items())
                raise ApplicationError(
                    f"feeds: none of the {len(outcomes)} feeds could be read, nor a cached copy of it: "
                    f"{reasons[:4000]}",
                    {"failed_feeds": list(outcomes)},
                    type="NoFeedAvailable",
                    non_retryable=True,
                )
            read = [feed_articles for feed_articles, _ in fetched if feed_articles]
            self._entries_not_read = {f.feed: f.entries_not_read for f in read if f.entries_not_read}
            # Runs recorded before fetches stored their articles carry them inline.
            articles = [a for f in read for a in f.articles]
            stored = [StoredFeed(name=f.feed, url=f.stored_url) for f in read if f.stored_url is not None]
        select = SelectInput(
            articles=articles, stored=stored, keywords=request.keywords, max_articles=request.max_articles
        )
        return await steps.run(
            "select",
            NewsActivities.select_articles,
            select,
            options=policies.FEED_SELECTION,
            describe=lambda r: f"{len(r.articles)} new relevant articles",
        )

    @workflow.query
    def status(self) -> NewsDigestStatus:
        """The steps' status, with the feeds fetched so far."""
        status = self.steps.status()
        current = "fetch" if self._fetching and status.current_step is None else status.current_step
        return NewsDigestStatus(
            **dict(status) | {"current_step": current}, feeds_done=self._feeds_done, feeds_total=self._feeds_total
        )
