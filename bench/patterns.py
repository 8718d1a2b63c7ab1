"""Pattern families benchmark: each family's sample as a workflow on the embedded server
(offline provider) vs. the same activities called as plain functions, one after another.

    python -m bench.patterns [--runs 15] [--concurrent 24]

Runs are sequential (one at a time), so the difference is the orchestration cost of one
run: scheduling each activity through the server and recording it in the history.
Routing uses the premium sample (no human in the loop); the news digest reads the sample
feed files and forgets what it published before each run, so every run does the work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Any

from sqlalchemy import delete

from sagaworks import LLM, LLMSettings, StepTiming, registry
from sagaworks.activities import parallel_analysis, sequential
from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.activities.news import NewsActivities, SeenArticleRow
from sagaworks.activities.routing import RoutingActivities
from sagaworks.activities.search import SearchActivities
from sagaworks.activities.writing import WritingActivities
from sagaworks.client.devserver import start_embedded
from sagaworks.contracts.blog import WritingInput
from sagaworks.contracts.news_digest import NewsletterInput, SelectInput, StoreDigestInput, SummariseInput
from sagaworks.contracts.routing import HandleInput
from sagaworks.contracts.search import EvaluateInput, RefineInput, SearchInput
from sagaworks.contracts.sequential import ReportInput
from sagaworks.contracts.text import TextInput
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES
from tests.corpus import RESEARCH, store_documents

SAMPLE_OF = {
    "sequential": "sequential/billing-retrospective.json",
    "parallel-analysis": "parallel-analysis/billing-retrospective.json",
    "routing": "routing/premium-request.json",
    "iterative": "iterative/research-idempotency.json",
    "blog": "blog/durable-workflows.json",
    "news-digest": "news-digest/weekly.json",
}


def plain_runs(db: Database) -> dict[str, Callable[[Any], Any]]:
    """Each family's activities as plain calls, in the workflow's order."""
    routing, search = RoutingActivities(db), SearchActivities(db)
    writing = WritingActivities(LLM(db, settings=LLMSettings()))  # offline: the extractive composer
    news = NewsActivities(db)

    def run_sequential(request: Any) -> Any:
        from datetime import datetime

        ingested = sequential.ingest_text(request.text)
        processed = sequential.process_text(ingested.text)
        analysis = sequential.analyse_text(ingested.text)
        now = datetime.now(UTC)
        steps = [
            StepTiming(step=s, outcome="ok", started_at=now, finished_at=now) for s in ("ingest", "process", "analyse")
        ]
        return sequential.render_report(ReportInput(steps=steps, profile=processed.profile, analysis=analysis))

    def run_parallel(request: Any) -> Any:
        text = TextInput(text=request.text)
        return [
            parallel_analysis.analyse_sentiment(text),
            parallel_analysis.extract_keywords(text),
            parallel_analysis.summarise_text(text),
            parallel_analysis.detect_language(text),
        ]

    def run_routing(request: Any) -> Any:
        tier = routing.classify_request(request).tier
        handle = {"admin": routing.handle_admin, "premium": routing.handle_premium, "standard": routing.handle_standard}
        return handle[tier](
            HandleInput(request_id=request.request_id, requester=request.requester, text=request.text, tier=tier)
        )

    def run_iterative(request: Any) -> Any:
        query = request.query
        for iteration in range(1, request.max_iterations + 1):
            found = search.search_chunks(SearchInput(query=query, top_k=request.top_k))
            quality = search.evaluate_hits(EvaluateInput(query=request.query, hits=found.hits))
            if quality.score >= request.target_quality or iteration == request.max_iterations:
                return quality
            query = search.refine_query(
                RefineInput(original=request.query, current=query, hits=found.hits, missing_terms=quality.missing_terms)
            )

    def run_blog(request: Any) -> Any:
        hits = search.search_chunks(SearchInput(query=request.topic, top_k=request.sources)).hits
        outline = writing.outline_post(WritingInput(topic=request.topic, passages=hits))
        draft = writing.draft_post(WritingInput(topic=request.topic, passages=hits, previous=outline.text))
        return writing.review_post(WritingInput(topic=request.topic, passages=hits, previous=draft.text))

    def run_news(request: Any) -> Any:
        from datetime import datetime

        articles = [a for feed in request.feeds for a in news.fetch_feed(feed).articles]
        chosen = news.select_articles(
            SelectInput(articles=articles, keywords=request.keywords, max_articles=request.max_articles)
        )
        summarised = news.categorise_and_summarise(
            SummariseInput(articles=chosen.articles, sentences=request.summary_sentences)
        )
        letter = news.build_newsletter(
            NewsletterInput(title=request.title, date=datetime.now(UTC), articles=summarised)
        )
        return news.store_digest(
            StoreDigestInput(
                digest_key=f"plain-{uuid.uuid4()}",
                name=request.name,
                newsletter=letter,
                article_keys=[a.key for a in summarised],
            )
        )

    return {
        "sequential": run_sequential,
        "parallel-analysis": run_parallel,
        "routing": run_routing,
        "iterative": run_iterative,
        "blog": run_blog,
        "news-digest": run_news,
    }


def _fresh(db: Database, name: str, request: Any) -> Any:
    if name == "news-digest":
        with db.transaction() as session:
            session.execute(delete(SeenArticleRow))
    if name == "routing":
        return request.model_copy(update={"request_id": f"bench-{uuid.uuid4().hex[:12]}"})
    return request


def text_of_bench() -> str:
    """The long text of the concurrency run: the research samples, three times."""
    return "\n\n".join(p.read_text() for p in RESEARCH) * 3


async def concurrent_analyses(client: Any, db: Database, count: int, *, processes: bool) -> float:
    """Analyses per second with ``count`` parallel-analysis runs in flight at once."""
    queue = f"bench-cpu-{uuid.uuid4().hex[:8]}"
    text = text_of_bench()
    request = registry().family("parallel-analysis").parse({"text": text})

    async def burst() -> float:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                client.execute_workflow(
                    "ParallelAnalysisWorkflow", request, id=f"bench-{uuid.uuid4()}", task_queue=queue
                )
                for _ in range(count)
            )
        )
        return count / (time.perf_counter() - started)

    async with running_worker(client, db, task_queue=queue, activity_threads=8, cpu_processes=2 if processes else 0):
        await burst()  # warm up: the pool's processes start and import the libraries
        return await burst()


async def main(runs: int, concurrent: int) -> None:
    figures: dict[str, tuple[float, float]] = {}
    async with await start_embedded() as env:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{tmp}/app.db")
            store_documents(db, RESEARCH)
            plain = plain_runs(db)
            settings = DocumentSettings(roots=(SAMPLES.parent,))
            async with running_worker(
                env.client, db, task_queue="bench-patterns", activity_threads=8, settings=[settings]
            ):
                for name, sample in SAMPLE_OF.items():
                    fam = registry().family(name)
                    request = fam.parse(json.loads((SAMPLES / sample).read_text()))
                    workflow_times, plain_times = [], []
                    # Untimed first run: the pool's processes start and import the libraries.
                    await env.client.execute_workflow(
                        fam.workflow_type,
                        _fresh(db, name, request),
                        id=f"bench-{uuid.uuid4()}",
                        task_queue="bench-patterns",
                    )
                    for _ in range(runs):
                        arg = _fresh(db, name, request)
                        started = time.perf_counter()
                        await env.client.execute_workflow(
                            fam.workflow_type, arg, id=f"bench-{uuid.uuid4()}", task_queue="bench-patterns"
                        )
                        workflow_times.append(time.perf_counter() - started)
                        arg = _fresh(db, name, request)
                        started = time.perf_counter()
                        await asyncio.to_thread(plain[name], arg)
                        plain_times.append(time.perf_counter() - started)
                    figures[name] = (statistics.median(workflow_times), statistics.median(plain_times))
            throughput = {
                kind: await concurrent_analyses(env.client, db, concurrent, processes=kind == "processes")
                for kind in ("threads", "processes")
            }
            db.dispose()
    print(
        f"{runs} runs each, one at a time; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(f"{'family':<18} {'workflow p50 ms':>16} {'plain p50 ms':>13} {'overhead ms':>12}")
    for name, (workflow_p50, plain_p50) in figures.items():
        print(
            f"{name:<18} {workflow_p50 * 1000:>16.1f} {plain_p50 * 1000:>13.1f} "
            f"{(workflow_p50 - plain_p50) * 1000:>12.1f}"
        )
    print(
        f"\n{concurrent} parallel-analysis runs at once (a "
        f"{len(text_of_bench())} character text), CPU-bound activities in:"
    )
    for kind, rate in throughput.items():
        print(f"  {kind:<10} {rate:6.2f} analyses/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--concurrent", type=int, default=24)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.concurrent))
