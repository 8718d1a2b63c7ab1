"""Every family of the registry, fed an input at its documented limits, ends as declared and
keeps every payload of its history well under Temporal's 2 MiB limit.

A family is covered by adding a :class:`LimitCase` to :data:`CASES`: a context manager
that yields the input (and serves whatever the input points at), the worker's document
settings if it needs some, and a check of the result. A family without a case is listed as
skipped, so the families still to cover stay visible.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from sagaworks.activities.db import Database
from sagaworks.activities.news import SELECTION_BYTES
from sagaworks.contracts.news_digest import FeedSource, NewsDigestInput, NewsDigestResult
from sagaworks.worker import running_worker
from sagaworks import registry
from tests.feed_server import LARGE_ENTRIES, feed_server

PAYLOAD_BUDGET = 1 * 2**20
"""The largest history event a run at its limits may write: half of Temporal's 2 MiB."""


@dataclass(frozen=True)
class LimitCase:
    inputs: Callable[[Path], AbstractContextManager[Any]]
    """tmp_path -> a context manager yielding the family's input at its documented limits."""
    check: Callable[[Any], None]
    """Asserts on the (completed) run's result, decoded as the family's result type."""
    result_type: type


@contextmanager
def _news_at_limits(tmp_path: Path) -> Iterator[NewsDigestInput]:
    """Feeds at their limits: two of 10,000 entries (3.1 MB each, all read), one entry of
    4 MiB of markup, and the most articles a digest may hold."""
    with feed_server(tmp_path) as server:
        yield NewsDigestInput(
            name=f"limits-{uuid.uuid4().hex[:8]}",
            feeds=[
                FeedSource(name="large-a", url=server.url("large-a"), max_entries=10_000, timeout_seconds=60),
                FeedSource(name="large-b", url=server.url("large-b"), max_entries=10_000, timeout_seconds=60),
                FeedSource(name="long", url=server.url("long-entry"), timeout_seconds=60),
            ],
            max_articles=500,
        )


def _check_news(result: NewsDigestResult) -> None:
    assert {name: outcome.status for name, outcome in result.feeds.items()} == dict.fromkeys(("large-a", "large-b", "long"), "ok")
    assert result.stored and result.entries_not_read == {}
    selected = sum(len(a.model_dump_json()) for a in result.articles)
    assert 0 < len(result.articles) <= 500 and selected <= SELECTION_BYTES
    # Every entry read: what the digest holds, and the rest left for a later one.
    assert len(result.articles) + result.over_limit == 2 * LARGE_ENTRIES + 1


CASES: dict[str, LimitCase] = {
    "news-digest": LimitCase(_news_at_limits, _check_news, NewsDigestResult),
}


@pytest.mark.parametrize("name", registry().names)
async def test_a_family_at_its_documented_limits_keeps_its_payloads_bounded(
    name: str, dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    case = CASES.get(name)
    if case is None:
        pytest.skip(f"no input at its documented limits yet for {name}: add a LimitCase to tests/test_limits.py")
    fam = registry().family(name)
    with case.inputs(tmp_path) as request:
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
            handle = await dev_client.start_workflow(
                fam.workflow_type, request, id=f"limits-{uuid.uuid4()}", task_queue=task_queue, result_type=case.result_type
            )
            result = await asyncio.wait_for(handle.result(), 300)
    history = await handle.fetch_history()
    largest = max(history.events, key=lambda event: event.ByteSize())
    assert largest.ByteSize() < PAYLOAD_BUDGET, f"{largest.event_type} of {largest.ByteSize()} bytes"
    case.check(result)
