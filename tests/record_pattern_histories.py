"""Record the pattern families' histories for tests/test_replay.py:
python -m tests.record_pattern_histories

One completed run and one failure path per family (sequential, parallel-analysis,
routing, iterative, blog, news-digest), on a throwaway dev server and database. Like
tests/record_histories.py, a scenario already recorded gets a new file beside the old one.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.activities.feed_reader import FeedReader
from sagaworks.client.approvals import decide
from sagaworks.client.devserver import start_embedded
from sagaworks.contracts.blog import BlogInput
from sagaworks.contracts.iterative import IterativeInput
from sagaworks.contracts.news_digest import Article, FeedSource, NewsDigestInput, NewsDigestResume, Selection
from sagaworks.contracts.parallel_analysis import ParallelAnalysisInput
from sagaworks.contracts.routing import RoutingInput
from sagaworks.contracts.sequential import SequentialInput
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES
from tests.approval_probe import wait_for_approval_state
from tests.corpus import store_documents
from tests.record_histories import _save, new_history_path, record_into

TEXT = (SAMPLES / "research" / "retries-and-backoff.md").read_text()
FEEDS = SAMPLES / "feeds"


async def _approve_when_pending(client: Client, handle: WorkflowHandle[Any, Any]) -> None:
    await wait_for_approval_state(handle, "pending")
    await decide(client, handle.id, "approve", "alice")


def scenarios() -> dict[str, tuple[str, Any, Callable[[Client, WorkflowHandle[Any, Any]], Awaitable[None]] | None]]:
    """name -> (workflow type, input, what to do while it runs)."""
    request_id = uuid.uuid4().hex[:8]
    return {
        "sequential_completed": ("SequentialWorkflow", SequentialInput(text=TEXT), None),
        "sequential_rejected": ("SequentialWorkflow", SequentialInput(text="too short"), None),
        "parallel_analysis_completed": ("ParallelAnalysisWorkflow", ParallelAnalysisInput(text=TEXT), None),
        "parallel_analysis_partial": (
            "ParallelAnalysisWorkflow",
            ParallelAnalysisInput(text=TEXT, fail=["sentiment", "summary"]),
            None,
        ),
        "routing_approved": (
            "RoutingWorkflow",
            RoutingInput(request_id=f"a-{request_id}", requester="dana", text="admin access to billing"),
            _approve_when_pending,
        ),
        "routing_auto_rejected": (
            "RoutingWorkflow",
            RoutingInput(request_id=f"r-{request_id}", requester="dana", text="sudo please", deadline_seconds=1),
            None,
        ),
        "iterative_completed": (
            "IterativeSearchWorkflow",
            IterativeInput(query="exponential backoff jitter", target_quality=0.5),
            None,
        ),
        "iterative_capped": (
            "IterativeSearchWorkflow",
            IterativeInput(
                query="idempotency key refund duplicate", target_quality=1.0, max_iterations=3, iterations_per_run=2
            ),
            None,
        ),
        "blog_completed": (
            "BlogWorkflow",
            BlogInput(topic="Retries, idempotency and replay in durable workflows"),
            None,
        ),
        "blog_nothing_to_cite": ("BlogWorkflow", BlogInput(topic="Gardening tomatoes in winter"), None),
        "news_digest_completed": (
            "NewsDigestWorkflow",
            NewsDigestInput(
                name="record", feeds=[FeedSource(name=p.stem, url=str(p)) for p in sorted(FEEDS.glob("*.xml"))]
            ),
            None,
        ),
        "news_digest_broken_feed": (
            "NewsDigestWorkflow",
            NewsDigestInput(
                name="record-broken",
                feeds=[
                    FeedSource(name="research", url=str(FEEDS / "research-notes.rdf.xml")),
                    FeedSource(name="missing", url=str(FEEDS / "no-such-feed.xml")),
                ],
            ),
            None,
        ),
        "news_digest_no_feed": (
            "NewsDigestWorkflow",
            NewsDigestInput(
                name="record-no-feed", feeds=[FeedSource(name="missing", url=str(FEEDS / "no-such-feed.xml"))]
            ),
            None,
        ),
        # Runs after news_digest_completed, which published every sample article: a digest
        # holding two of them and one new article stores the new one only.
        "news_digest_claimed_elsewhere": (
            "NewsDigestWorkflow",
            NewsDigestInput(
                name="record-claimed",
                feeds=[FeedSource(name="research", url=str(FEEDS / "research-notes.rdf.xml"))],
                resume=NewsDigestResume(
                    from_stage="summarise",
                    source_workflow_id="recorded-selection",
                    select=Selection(
                        articles=[*_sample_articles("research-notes.rdf.xml"), _new_article(request_id)],
                        seen_before=0,
                        irrelevant=0,
                        duplicates=0,
                        over_limit=0,
                    ),
                ),
            ),
            None,
        ),
    }


def _sample_articles(name: str) -> list[Article]:
    with (FEEDS / name).open("rb") as feed:
        return list(FeedReader(feed, "research", name, 100))


def _new_article(request_id: str) -> Article:
    guid = f"recorded-{request_id}"
    return Article(
        key=hashlib.sha256(guid.encode()).hexdigest(),
        guid=guid,
        title="A study published after the last digest",
        link="",
        source="research",
        published=None,
        text="Researchers published a new benchmark of workflow "
        "engines. The paper compares retries. The dataset is open.",
    )


async def record(out_dir: Path) -> list[Path]:
    """Run each scenario once and save its history; return the files written."""
    written: list[Path] = []
    task_queue = f"record-{uuid.uuid4()}"
    async with await start_embedded() as env:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{tmp}/app.db")
            store_documents(db)
            settings = DocumentSettings(roots=(SAMPLES,))
            async with running_worker(env.client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
                for name, (workflow_type, arg, during) in scenarios().items():
                    handle = await env.client.start_workflow(
                        workflow_type, arg, id=f"{name}-{uuid.uuid4().hex[:8]}", task_queue=task_queue
                    )
                    if during is not None:
                        await during(env.client, handle)
                    written.append(await _save(handle, new_history_path(out_dir, name)))
                    if name == "iterative_capped":  # also the first run, which continued as new
                        first = env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
                        written.append(await _save(first, new_history_path(out_dir, "iterative_continued_as_new")))
            db.dispose()
    return written


if __name__ == "__main__":
    record_into(lambda target, _only: record(target), sys.argv[1:])
