"""Every family of the registry, fed an input at its documented limits, ends as declared and
keeps every payload of its history well under Temporal's 2 MiB limit.

A family is covered by adding a :class:`LimitCase` to :data:`CASES`: a context manager
that yields the input (and serves whatever the input points at), the worker's settings
if it needs some (document roots and limits, plan limits), and a check of the result. A
family without a case is listed as skipped, so the families still to cover stay visible.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from sagaworks import registry
from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.activities.news import SELECTION_BYTES
from sagaworks.activities.orders import seed_inventory
from sagaworks.contracts.aggregate import MAX_ITEM_RESULT_BYTES, AggregateInput, AggregateResult
from sagaworks.contracts.blog import BlogInput, BlogResult
from sagaworks.contracts.document import (
    MAX_BATCH_DOCUMENTS,
    MAX_FOLDER_DEPTH,
    BatchInput,
    BatchStatus,
    DocumentInput,
    DocumentResult,
)
from sagaworks.contracts.iterative import IterativeInput, IterativeResult
from sagaworks.contracts.mcp import DEFAULT_MAX_RESULT_BYTES, MAX_ARGUMENT_BYTES, McpCallInput, McpToolOutput
from sagaworks.contracts.news_digest import FeedSource, NewsDigestInput, NewsDigestResult
from sagaworks.contracts.orders import OrderInput, OrderItem, OrderResult
from sagaworks.contracts.parallel_analysis import ParallelAnalysisInput, ParallelAnalysisResult
from sagaworks.contracts.plans import PlanInput, PlanResult
from sagaworks.contracts.query import MAX_ROWS, QueryInput, QueryResult
from sagaworks.contracts.routing import RoutingInput, RoutingResult
from sagaworks.contracts.sequential import SequentialInput, SequentialResult
from sagaworks.contracts.support import MAX_COMMENTS, AssignRequest, Comment, ResolveRequest, TicketInput, TicketView
from sagaworks.worker import running_worker
from sagaworks.workflows.document_batch import DocumentBatch
from sagaworks.workflows.support_ticket import SupportTicket
from tests.corpus import store_documents
from tests.feed_server import LARGE_ENTRIES, feed_server
from tests.plans import plan_settings, write_long_plan

# A long run (`make test-long`): every family at its documented limits.
pytestmark = pytest.mark.long

PAYLOAD_BUDGET = 1 * 2**20
"""The largest history event a run at its limits may write: half of Temporal's 2 MiB."""


@dataclass(frozen=True)
class LimitCase:
    inputs: Callable[[Path], AbstractContextManager[Any]]
    """tmp_path -> a context manager yielding the family's input at its documented limits."""
    check: Callable[[Any], None]
    """Asserts on the (completed) run's result, decoded as the family's result type."""
    result_type: type
    settings: Callable[[Path], list[object]] = lambda tmp_path: []
    """tmp_path -> the worker's settings objects (such as ``DocumentSettings``)."""
    drive: Callable[[WorkflowHandle[Any, Any]], Awaitable[Any]] | None = None
    """Takes the started run where its limits are reached as a user would (updates,
    signals) and returns what :attr:`check` checks; None: the run's result."""


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
    assert {name: outcome.status for name, outcome in result.feeds.items()} == dict.fromkeys(
        ("large-a", "large-b", "long"), "ok"
    )
    assert result.stored and result.entries_not_read == {}
    selected = sum(len(a.model_dump_json()) for a in result.articles)
    assert 0 < len(result.articles) <= 500 and selected <= SELECTION_BYTES
    # Every entry read: what the digest holds, and the rest left for a later one.
    assert len(result.articles) + result.over_limit == 2 * LARGE_ENTRIES + 1


def _text(characters: int) -> str:
    """Prose of exactly ``characters`` characters, many of them 2 to 4 bytes in UTF-8, so
    a limit counted in characters is also exercised at its largest size in bytes."""
    sentence = "Die Überprüfung verlief gut 😀, el año fue bueno y la migración terminó. "
    return (sentence * (characters // len(sentence) + 1))[:characters]


@contextmanager
def _sequential_at_limits(tmp_path: Path) -> Iterator[SequentialInput]:
    """The longest text the input model allows (100,000 characters)."""
    yield SequentialInput(text=_text(100_000))


def _check_sequential(result: SequentialResult) -> None:
    assert [step.step for step in result.steps] == ["ingest", "process", "analyse", "report"]
    assert result.profile.characters > 90_000 and result.report


@contextmanager
def _parallel_at_limits(tmp_path: Path) -> Iterator[ParallelAnalysisInput]:
    """The longest text the input model allows (100,000 characters)."""
    yield ParallelAnalysisInput(text=_text(100_000))


def _check_parallel(result: ParallelAnalysisResult) -> None:
    assert not result.partial and result.unavailable == []
    assert result.sentiment and result.keywords and result.summary and result.language


@contextmanager
def _routing_at_limits(tmp_path: Path) -> Iterator[RoutingInput]:
    """The longest request text (10,000 characters), a premium one: no approval to wait for."""
    yield RoutingInput(
        request_id=f"limits-{uuid.uuid4().hex[:8]}", requester="r" * 200, text="premium " + _text(10_000 - 8)
    )


def _check_routing(result: RoutingResult) -> None:
    assert result.classification.tier == "premium" and result.handled is not None


@contextmanager
def _order_at_limits(tmp_path: Path) -> Iterator[OrderInput]:
    """The most items an order may hold (50), each at its largest quantity and price, and
    the longest shipping address (500 characters)."""
    skus = [f"LIMIT-{n:02d}-" + "X" * 22 for n in range(50)]
    database = Database(f"sqlite:///{tmp_path / 'app.db'}")  # the `db` fixture's file
    try:
        seed_inventory(database, dict.fromkeys(skus, 1000))
    finally:
        database.dispose()
    yield OrderInput(
        order_id=f"limits-{uuid.uuid4().hex[:8]}",
        customer_email="a" * 64 + "@" + "b" * 180 + ".example",
        items=[OrderItem(sku=sku, quantity=1000, unit_price_cents=10_000_000) for sku in skus],
        shipping_address=_text(500),
    )


def _check_order(result: OrderResult) -> None:
    assert result.amount_cents == 50 * 1000 * 10_000_000
    assert len(result.references) == 5 and all(result.references.values())


@contextmanager
def _query_at_limits(tmp_path: Path) -> Iterator[QueryInput]:
    """The most rows a result may carry (``MAX_ROWS``), of a question that returns more."""
    yield QueryInput(
        question="date, wind and precipitation of days", request_id=uuid.uuid4().hex[:12], max_rows=MAX_ROWS
    )


def _check_query(result: QueryResult) -> None:
    assert len(result.rows) == MAX_ROWS and result.truncated


def _store_largest_chunks(tmp_path: Path, wanted: list[str], other: list[str], *, matching: int, others: int) -> None:
    """Stores ``matching`` documents of the ``wanted`` and ``other`` words and ``others`` of
    the ``other`` words alone, each one chunk of 20,000 characters, in the `db` fixture's file."""
    paths = []
    for n in range(matching + others):
        vocabulary = wanted + other if n < matching else other
        text = " ".join(vocabulary[i % len(vocabulary)] + ("" if i % 13 else ".") for i in range(2_400))
        paths.append(tmp_path / f"doc-{n:03d}.md")
        paths[-1].write_text(text[:20_000], encoding="utf-8")
    database = Database(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        assert store_documents(database, paths, chunk_size=20_000) == matching + others
    finally:
        database.dispose()


@contextmanager
def _iterative_at_limits(tmp_path: Path) -> Iterator[IterativeInput]:
    """The most hits a round may keep (``top_k`` 50), each a chunk of the largest size the
    document pipeline writes (20,000 characters, 2 bytes each in UTF-8), carried across
    continue-as-new."""
    # 50 documents mention the query's terms, twice as many do not (BM25 scores a term found
    # in half the chunks or more 0 or less).
    wanted, other = ["идемпотентность", "повтор", "ключ"], ["компенсация", "сага", "журнал", "событие", "отказ"]
    _store_largest_chunks(tmp_path, wanted, other, matching=50, others=100)
    yield IterativeInput(
        query=" ".join([*wanted, "нигде"]), target_quality=1.0, max_iterations=3, top_k=50, iterations_per_run=1
    )


def _check_iterative(result: IterativeResult) -> None:
    # The target (a term no document holds) is never reached: two continue-as-new carry the best.
    assert (result.stopped, result.iterations, len(result.best.hits)) == ("iteration-cap", 3, 50)


@contextmanager
def _ticket_at_limits(tmp_path: Path) -> Iterator[TicketInput]:
    """The longest subject and body; :func:`_drive_ticket` adds the longest comments."""
    yield TicketInput(
        ticket_id=f"limits-{uuid.uuid4().hex[:8]}",
        customer_email="ada@example.com",
        subject=_text(200),
        body=_text(10_000),
    )


async def _drive_ticket(handle: WorkflowHandle[Any, Any]) -> TicketView:
    """Three times :data:`MAX_COMMENTS` comments of 5,000 four-byte characters, then the
    longest resolution; the ticket's view is what every update returns."""
    while (await handle.query(SupportTicket.status)).ticket is None:  # not classified yet
        await asyncio.sleep(0.05)
    await handle.execute_update(SupportTicket.assign, AssignRequest(agent="dana"))
    for _ in range(3 * MAX_COMMENTS):
        await handle.signal(SupportTicket.comment, Comment(author="dana", text="😀" * 5000))
    view = await handle.execute_update(SupportTicket.resolve, ResolveRequest(resolution="😀" * 5000))
    await handle.terminate("the limits test ends here; the reopen window is days long")
    return view


def _check_ticket(view: TicketView) -> None:
    assert view.state == "resolved" and (len(view.comments), view.comments_dropped) == (MAX_COMMENTS, 2 * MAX_COMMENTS)


DOCUMENT_BYTES = 5 * 2**19
"""The test worker's ``SAGAWORKS_MAX_DOCUMENT_BYTES`` (2.5 MiB: more than one payload may
hold, so the pipeline's claim checks are what keeps it going; the 25 MiB default would
take minutes to extract)."""


@contextmanager
def _document_at_limits(tmp_path: Path) -> Iterator[DocumentInput]:
    """A text of exactly the largest size the worker accepts, in the largest chunks, the
    most of them per activity and in flight."""
    path = tmp_path / "largest.txt"
    data = _text(DOCUMENT_BYTES).encode()[:DOCUMENT_BYTES].decode(errors="ignore").encode()  # whole characters
    path.write_bytes(data.ljust(DOCUMENT_BYTES, b"."))
    yield DocumentInput(
        path=str(path), chunk_size=20_000, chunk_overlap=2_000, extract_window=64, chunks_per_activity=64
    )


def _check_document(result: DocumentResult) -> None:
    # 20,000-character chunks of text of 1.1 bytes a character on average.
    assert result.chunk_count >= 100 and result.concept_count > 0 and not result.reused


@contextmanager
def _blog_at_limits(tmp_path: Path) -> Iterator[BlogInput]:
    """The longest topic (200 characters) and the most sources (20), each a chunk of the
    largest size the document pipeline writes (20,000 characters, 2 bytes each in UTF-8)."""
    topic_words = ["идемпотентность", "повтор", "ключ", "компенсация", "журнал"]
    other = ["сага", "событие", "отказ", "шаг", "очередь", "работник", "история"]
    _store_largest_chunks(tmp_path, topic_words, other, matching=20, others=40)
    topic = (" ".join(topic_words) + " ") * 5
    yield BlogInput(topic=topic[:200], sources=20)


def _check_blog(result: BlogResult) -> None:
    assert len(result.citations) == 20 and result.word_count > 100 and result.markdown


PLAN_PAGES = 450
"""The test worker's largest plan in pages (``SAGAWORKS_MAX_PLAN_PAGES``: the default 1,000
would take minutes to extract)."""


@contextmanager
def _plan_at_limits(tmp_path: Path) -> Iterator[PlanInput]:
    """A plan of exactly the most pages the worker accepts, three of them scanned (OCR), and
    of exactly its largest size in bytes; the longest id and municipality."""
    path = tmp_path / "plans" / "largest.pdf"
    path.parent.mkdir()
    write_long_plan(path, PLAN_PAGES, scanned=(3, 200, 449))
    yield PlanInput(plan_id="p" + "l" * 79, path=str(path), municipality=_text(200))


def _plan_limits(tmp_path: Path) -> list[object]:
    path = tmp_path / "plans" / "largest.pdf"
    return [replace(plan_settings(path.parent), max_pages=PLAN_PAGES, max_bytes=path.stat().st_size)]


def _check_plan(result: PlanResult) -> None:
    loaded = next(stage for stage in result.stages if stage.stage == "load")
    assert loaded.metrics["pages"] == PLAN_PAGES and result.report
    assert "fallback_ocr" in {m.strategy for m in result.mitigations}  # the three scanned pages


def _batch_folder(tmp_path: Path) -> Path:
    return tmp_path / "batch"


@contextmanager
def _batch_at_limits(tmp_path: Path) -> Iterator[BatchInput]:
    """A folder of the most documents a batch accepts (``MAX_BATCH_DOCUMENTS``), each at the
    deepest level it walks (``MAX_FOLDER_DEPTH``) under folder and file names of 200
    characters: about 19 MB of paths. :func:`_drive_batch` stops it in its second run."""
    deepest = _batch_folder(tmp_path).joinpath(*(f"{level}" + "d" * 199 for level in range(MAX_FOLDER_DEPTH)))
    deepest.mkdir(parents=True)
    for n in range(MAX_BATCH_DOCUMENTS):
        (deepest / (f"{n:05d}" + "f" * 191 + ".txt")).write_text(
            f"Document {n} records a saga step and its compensation.\n"
        )
    yield BatchInput(folder=str(_batch_folder(tmp_path)), max_in_flight=10, documents_per_run=20)


async def _drive_batch(handle: WorkflowHandle[Any, Any]) -> tuple[BatchStatus, int]:
    """Waits for the batch's second run to finish documents (10,000 child runs would take
    far beyond this test's time), then ends it; returns its status and the largest event
    of its first run (the one that listed the folder)."""
    status = await handle.query(DocumentBatch.status)
    while status.done <= 25:
        await asyncio.sleep(0.2)
        status = await handle.query(DocumentBatch.status)
    await handle.terminate("the limits test ends here; the first 25 documents show the batch going on")
    first = handle._client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    history = await first.fetch_history()
    return status, max(event.ByteSize() for event in history.events)


def _check_batch(outcome: tuple[BatchStatus, int]) -> None:
    status, first_run_largest = outcome
    assert first_run_largest < PAYLOAD_BUDGET // 4
    assert status.total == MAX_BATCH_DOCUMENTS and status.failed == status.rejected == 0


def _padded_query(count: int, size: int) -> str:
    """A read-only query answering one value of ``count`` characters, padded by a comment to
    ``size`` characters."""
    query = f"SELECT substr(hex(zeroblob({count})), 1, {count}) AS v -- "
    return query + "x" * (size - len(query))


@contextmanager
def _mcp_call_at_limits(tmp_path: Path) -> Iterator[McpCallInput]:
    """The longest arguments (64 KiB of JSON), asking for an answer 1 KiB under the largest
    one a call may return (the server's max_result_bytes, 256 KiB by default)."""
    framing = len(json.dumps({"query": ""}, separators=(",", ":")))
    query = _padded_query(DEFAULT_MAX_RESULT_BYTES - 1024, MAX_ARGUMENT_BYTES - framing)
    yield McpCallInput(server="database", tool="read_query", arguments={"query": query}, timeout_seconds=60)


def _check_mcp_call(result: McpToolOutput) -> None:
    assert len(result.text) > DEFAULT_MAX_RESULT_BYTES - 1024


AGGREGATE_CITIES = ["Seattle", "San Francisco", *(f"{'Atlantis ' * 11}{n:02d}"[-100:] for n in range(18))]
"""20 cities of up to 100 characters: two with a station, 18 the weather server refuses."""


@contextmanager
def _aggregate_at_limits(tmp_path: Path) -> Iterator[AggregateInput]:
    """The most cities (20) and search terms (10), the longest question and a 2,000-character
    query whose answer is exactly the most an item keeps (16 KiB of JSON)."""
    # read_query answers "[{'v': '...'}]": 11 characters around the value, 2 quotes in JSON.
    yield AggregateInput(
        request_id=f"limits-{uuid.uuid4().hex[:8]}",
        question=("What do the files say about customers? " * 60)[:2000],
        cities=AGGREGATE_CITIES,
        search_terms=["saga", "support", "order", "ticket", "log", "plan", "feed", "query", "blog", "x" * 100],
        sql=_padded_query(MAX_ITEM_RESULT_BYTES - 13, 2000),
    )


def _check_aggregate(result: AggregateResult) -> None:
    weather, files, database = result.sources
    assert [item.state for item in weather.items] == ["completed"] * 2 + ["failed"] * 18
    assert files.state == "completed" and len(files.items) == 10
    assert database.state == "completed", database.items[0].error
    assert len(database.items[0].result) == MAX_ITEM_RESULT_BYTES - 2


CASES: dict[str, LimitCase] = {
    "news-digest": LimitCase(_news_at_limits, _check_news, NewsDigestResult),
    "sequential": LimitCase(_sequential_at_limits, _check_sequential, SequentialResult),
    "parallel-analysis": LimitCase(_parallel_at_limits, _check_parallel, ParallelAnalysisResult),
    "routing": LimitCase(_routing_at_limits, _check_routing, RoutingResult),
    "order": LimitCase(_order_at_limits, _check_order, OrderResult),
    "document": LimitCase(
        _document_at_limits,
        _check_document,
        DocumentResult,
        settings=lambda tmp_path: [DocumentSettings(roots=(tmp_path,), max_bytes=DOCUMENT_BYTES)],
    ),
    "query": LimitCase(_query_at_limits, _check_query, QueryResult),
    "iterative": LimitCase(_iterative_at_limits, _check_iterative, IterativeResult),
    "support-ticket": LimitCase(_ticket_at_limits, _check_ticket, TicketView, drive=_drive_ticket),
    "document-batch": LimitCase(
        _batch_at_limits,
        _check_batch,
        BatchStatus,
        drive=_drive_batch,
        settings=lambda tmp_path: [DocumentSettings(roots=(_batch_folder(tmp_path),))],
    ),
    "plan-analysis": LimitCase(_plan_at_limits, _check_plan, PlanResult, settings=_plan_limits),
    "blog": LimitCase(_blog_at_limits, _check_blog, BlogResult),
    "mcp-call": LimitCase(_mcp_call_at_limits, _check_mcp_call, McpToolOutput),
    "aggregate": LimitCase(_aggregate_at_limits, _check_aggregate, AggregateResult),
}


NOT_COVERED: dict[str, str] = {}
"""Families without a case yet, and why."""


@pytest.mark.parametrize("name", registry().names)
async def test_a_family_at_its_documented_limits_keeps_its_payloads_bounded(
    name: str, dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    case = CASES.get(name)
    if case is None:
        if name in NOT_COVERED:
            pytest.skip(f"{name}: {NOT_COVERED[name]}")
        pytest.skip(f"no input at its documented limits yet for {name}: add a LimitCase to tests/test_limits.py")
    fam = registry().family(name)
    with case.inputs(tmp_path) as request:
        async with running_worker(
            dev_client, db, task_queue=task_queue, activity_threads=4, settings=case.settings(tmp_path)
        ):
            handle = await dev_client.start_workflow(
                fam.workflow_type,
                request,
                id=fam.workflow_id(request),
                task_queue=task_queue,
                result_type=case.result_type,
            )
            result = await asyncio.wait_for(case.drive(handle) if case.drive else handle.result(), 300)
    history = await handle.fetch_history()
    largest = max(history.events, key=lambda event: event.ByteSize())
    assert largest.ByteSize() < PAYLOAD_BUDGET, f"{largest.event_type} of {largest.ByteSize()} bytes"
    case.check(result)
