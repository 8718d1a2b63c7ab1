"""Restart from a step (``saga restart ID --from STEP``; ``--from-stage`` is the same option)
for the document, blog, news-digest and query families on the step runner, asserted against
the new run's history: the steps before the named one schedule no activity, it and the later
ones do, and the result is the one a full run gives. (plan-analysis: tests/test_plan_trace.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from sagaworks import registry
from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.activities.errors import ErrorClass, error
from sagaworks.activities.llm import ConceptList, OfflineProvider
from sagaworks.activities.query.activities import QuerySettings
from sagaworks.client.api import ApiSettings
from sagaworks.client.postmortem import RestartRefused, restart_run
from sagaworks.client.runs import start_run
from sagaworks.client.trace import trace_run
from sagaworks.contracts.blog import BlogInput, BlogResult
from sagaworks.contracts.document import DocumentResult, RecordedResume
from sagaworks.contracts.news_digest import FeedSource, NewsDigestInput, NewsDigestResult
from sagaworks.contracts.query import QueryResult
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES
from tests.apiserver import api_server
from tests.corpus import store_documents
from tests.documents import SAMPLES as DOCUMENTS
from tests.documents import start_document, version_rows
from tests.queries import start_query

TOPIC = "Retries, idempotency and replay in durable workflows"


async def scheduled(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The activity types a run scheduled, in order: activities and local activities."""
    names = []
    for event in (await handle.fetch_history()).events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity":
                names.append(json.loads(marker.details["data"].payloads[0].data)["activity_type"])
    return names


async def restarted_on_steps(client: Client, workflow_id: str, step: str, result_type: type) -> tuple[Any, list[str]]:
    """Restart a step-runner run ``workflow_id`` from ``step``; the new run's result and
    scheduled activities."""
    handle = await restart_run(client, workflow_id, step)
    typed = client.get_workflow_handle(handle.id, run_id=handle.result_run_id, result_type=result_type)
    result = await asyncio.wait_for(typed.result(), 120)
    return result, await scheduled(typed)


class SwitchableProvider(OfflineProvider):
    """The offline provider, refusing every call (for good) while ``down`` is set."""

    down = True

    def extract_concepts(self, text: str) -> ConceptList:
        if self.down:
            raise error(ErrorClass.MODEL, "model unavailable (HTTP 400)", non_retryable=True)
        return super().extract_concepts(text)


async def restarted_at_step(
    client: Client, workflow_id: str, step: str, result_type: type, **options: Any
) -> tuple[Any, Counter[str], Any]:
    """Restart a step-runner run ``workflow_id`` from ``step``: the new run's result, how many
    times it scheduled each activity type, and its final status."""
    handle = await restart_run(client, workflow_id, step, **options)
    typed = client.get_workflow_handle(handle.id, run_id=handle.result_run_id, result_type=result_type)
    result = await asyncio.wait_for(typed.result(), 120)
    return result, Counter(await scheduled(typed)), await typed.query("status")


async def test_document_restart_from_chunk_after_a_failed_extraction_equals_a_full_run(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    source, twin = tmp_path / "source.txt", tmp_path / "twin.txt"
    for copy in (source, twin):
        shutil.copy(DOCUMENTS / "durable-execution.txt", copy)
    provider = SwitchableProvider()
    settings = DocumentSettings(roots=(DOCUMENTS, tmp_path), extractor=provider)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=8, settings=[settings]):
        failed = await start_document(dev_client, task_queue, source)
        with pytest.raises(WorkflowFailureError):
            await failed.result()
        # The failed run removed the chunks it wrote (its finalisation compensates the chunk
        # step): extract has nothing to start from.
        with pytest.raises(RestartRefused, match="compensated step\\(s\\) chunk"):
            await restart_run(dev_client, failed.id, "extract")
        provider.down = False
        result, counts, status = await restarted_at_step(dev_client, failed.id, "chunk", DocumentResult)
        full = await (await start_document(dev_client, task_queue, twin)).result()
    # resolve and validate ran in the source run only; chunk and the later steps once.
    assert counts["resolve_document"] == counts["validate_document"] == 0
    assert counts["chunk_document"] == counts["store_concepts"] == counts["finalise_document"] == 1
    assert counts["extract_concepts"] >= 1
    assert [(t["step"], t["reused"]) for t in status["steps"]] == [
        ("resolve", True),
        ("validate", True),
        ("chunk", False),
        ("extract", False),
        ("store", False),
    ]
    assert status["restarted_from"] == f"{failed.id}/{failed.result_run_id}"
    assert result.content_hash == full.content_hash and result.version == full.version
    assert (result.chunk_count, result.concept_count) == (full.chunk_count, full.concept_count)
    assert result.top_concepts == full.top_concepts and not result.reused
    assert version_rows(db, result.document_id, result.version)["concepts"] == result.concept_count


async def test_document_restart_from_extract_reuses_the_steps_before_it(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    settings = DocumentSettings(roots=(DOCUMENTS, tmp_path))
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=8, settings=[settings]):
        first = await start_document(dev_client, task_queue, DOCUMENTS / "saga-pattern.md")
        source = await first.result()
        chunks = version_rows(db, source.document_id, source.version)["document_chunks"]
        result, counts, status = await restarted_at_step(dev_client, first.id, "extract", DocumentResult)
        # Extraction is many activities, not one result a restart could take over.
        with pytest.raises(RestartRefused, match=r"step\(s\) extract never completed; restart from extract or earlier"):
            await restart_run(dev_client, first.id, "store")
    assert counts["resolve_document"] == counts["validate_document"] == counts["chunk_document"] == 0
    # Two chunks: as many activities as chunks, since fewer would not fill the window.
    assert counts["extract_concepts"] == source.chunk_count
    assert counts["store_concepts"] == counts["finalise_document"] == 1
    assert status["plan"] == ["resolve", "validate", "chunk", "extract", "store"]
    assert [t["step"] for t in status["steps"] if t["reused"]] == ["resolve", "validate", "chunk"]
    assert result.model_dump(exclude={"reused"}) == source.model_dump(exclude={"reused"})
    assert version_rows(db, source.document_id, source.version)["document_chunks"] == chunks  # none written again


async def test_query_restart_at_data_and_at_viz(dev_client: Client, db: Database, task_queue: str) -> None:
    """A query restarts on the step runner: the agents before the step are reused (no
    activity scheduled for them), the health check runs again (it is about now)."""
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[QuerySettings()]):
        handle = await start_query(dev_client, task_queue, "average temperature by month in 2014")
        first = await handle.result()
        at_viz, viz_activities = await restarted_on_steps(dev_client, handle.id, "viz", QueryResult)
        # A restart of the restarted run takes over what that run reused (plan and rows).
        at_data, data_activities = await restarted_on_steps(dev_client, handle.id, "data", QueryResult)
    assert viz_activities == ["query_check_agents", "query_render"]
    assert data_activities == ["query_check_agents", "query_run", "query_render"]
    for again in (at_viz, at_data):
        assert again.resumed_from and again.resumed_from.startswith(f"{handle.id}/")
        assert again.model_dump(exclude={"resumed_from"}) == first.model_dump(exclude={"resumed_from"})


async def test_blog_restart_from_draft_reuses_research_and_outline(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    store_documents(db)
    fam = registry().family("blog")
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await start_run(dev_client, fam, BlogInput(topic=TOPIC), task_queue=task_queue)
        first = BlogResult.model_validate(await handle.result())
        result, counts, _ = await restarted_at_step(dev_client, handle.id, "draft", BlogResult)
        status = await dev_client.get_workflow_handle(handle.id).query("status")
    assert counts == Counter({"draft_post": 1, "review_post": 1})
    assert result.resumed_from == f"{handle.id}/{handle.result_run_id}"
    assert [(s["step"], s["reused"]) for s in status["steps"]] == [
        ("research", True),
        ("outline", True),
        ("draft", False),
        ("review", False),
    ]
    # The offline writer is deterministic: the same passages and outline give the same post.
    assert result.model_dump(exclude={"resumed_from"}) == first.model_dump(exclude={"resumed_from"})


async def test_news_digest_restart_from_summarise_reuses_the_fetch_and_selection(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    feeds = [FeedSource(name="notes", url=str(SAMPLES / "feeds" / "research-notes.rdf.xml"))]
    request = NewsDigestInput(name=f"restart-{uuid.uuid4().hex[:8]}", feeds=feeds)
    async with running_worker(
        dev_client, db, task_queue=task_queue, activity_threads=4, settings=[DocumentSettings(roots=(SAMPLES,))]
    ):
        handle = await start_run(dev_client, registry().family("news-digest"), request, task_queue=task_queue)
        first = NewsDigestResult.model_validate(await handle.result())
        result, counts, _ = await restarted_at_step(dev_client, handle.id, "summarise", NewsDigestResult)
        again, store_only, _ = await restarted_at_step(dev_client, handle.id, "store", NewsDigestResult)
    assert first.stored and len(first.articles) == 2
    # Neither the feed nor the selection is fetched or run again.
    assert counts == Counter({"categorise_and_summarise": 1, "build_newsletter": 1, "store_digest": 1})
    assert store_only == Counter({"store_digest": 1})
    for digest in (result, again):
        assert digest.articles == first.articles and digest.stored and digest.digest_key != first.digest_key
        assert (digest.seen_before, digest.irrelevant, digest.duplicates) == (
            first.seen_before,
            first.irrelevant,
            first.duplicates,
        )
        assert digest.feeds == {} and digest.resumed_from  # the feeds were the source run's
    # Built again: only the date line may differ (a run across midnight).
    lines = lambda markdown: [line for line in markdown.splitlines() if " new articles" not in line]  # noqa: E731
    assert lines(result.newsletter.markdown) == lines(first.newsletter.markdown)  # type: ignore[union-attr]
    assert again.newsletter == result.newsletter  # reused from the run restarted at summarise


async def test_refusals(dev_client: Client, db: Database, task_queue: str) -> None:
    store_documents(db)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[QuerySettings()]):
        unanswerable = await start_query(dev_client, task_queue, "what is the airspeed velocity of an unladen swallow")
        with pytest.raises(WorkflowFailureError):
            await unanswerable.result()
        with pytest.raises(RestartRefused, match=r"step\(s\) nlp never completed; restart from nlp or earlier"):
            await restart_run(dev_client, unanswerable.id, "data")
        with pytest.raises(RestartRefused, match="step 'health' is not a step of .*; its steps are nlp, data, viz"):
            await restart_run(dev_client, unanswerable.id, "health")
        running = await start_query(
            dev_client, task_queue, "average temperature by month in 2014", pause_between_agents_seconds=600
        )
        with pytest.raises(RestartRefused, match="is still running"):
            await restart_run(dev_client, running.id, "viz")
        await running.terminate()


def _saga(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"TEMPORAL_ADDRESS": address}
    saga = str(Path(sys.executable).parent / "saga")
    return subprocess.run([saga, *args], capture_output=True, text=True, env=env, timeout=120)


async def test_the_cli_restarts_a_blog_from_a_step_and_refuses_with_exit_1(
    dev_client: Client, dev_address: str, db: Database, task_queue: str
) -> None:
    store_documents(db)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await start_run(dev_client, registry().family("blog"), BlogInput(topic=TOPIC), task_queue=task_queue)
        await handle.result()
        refused = await asyncio.to_thread(_saga, dev_address, "restart", handle.id, "--from", "publish")
        assert refused.returncode == 1 and "its steps are research, outline, draft, review" in refused.stderr
        done = await asyncio.to_thread(_saga, dev_address, "restart", handle.id, "--from", "review")
        assert done.returncode == 0, done.stderr
        assert f"restarted {handle.id} from review" in done.stdout
        result = await dev_client.get_workflow_handle(handle.id, result_type=BlogResult).result()
    assert Counter(await scheduled(dev_client.get_workflow_handle(handle.id))) == Counter({"review_post": 1})
    assert result.resumed_from == f"{handle.id}/{handle.result_run_id}"


async def test_the_api_restarts_a_query_and_refuses_with_409(
    dev_client: Client, dev_address: str, db: Database, task_queue: str, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    settings = ApiSettings(
        token=token, task_queue=task_queue, address=dev_address, database_url=f"sqlite:///{tmp_path / 'api.db'}"
    )
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[QuerySettings()]):
        handle = await start_query(dev_client, task_queue, "average temperature by month in 2014")
        first = await handle.result()
        with api_server(settings) as api:
            async with httpx.AsyncClient(
                base_url=api.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as http:
                refused = await http.post(f"/api/workflows/{handle.id}/restart", params={"from_stage": "chart"})
                started = await http.post(f"/api/workflows/{handle.id}/restart", params={"from_stage": "viz"})
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == {
            "type": "RestartRefused",
            "field": "from_stage",
            "message": f"step 'chart' is not a step of {handle.id}; its steps are nlp, data, viz",
        }
        assert started.status_code == 201, started.text
        body = started.json()
        assert (body["workflow_id"], body["family"]) == (handle.id, "query") and body["run_id"] != handle.result_run_id
        again = dev_client.get_workflow_handle(handle.id, run_id=body["run_id"], result_type=QueryResult)
        result = await again.result()
    assert await scheduled(again) == ["query_check_agents", "query_render"]
    assert result.rows == first.rows and result.resumed_from == f"{handle.id}/{handle.result_run_id}"


async def test_a_resume_point_is_refused_from_callers_and_by_a_document_run(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    # Through the catalog (CLI, API, console, schedules): callers never set one.
    with pytest.raises(ValidationError, match=r"resume\n.*saga restart"):
        registry().family("query").parse(
            {
                "question": "average temperature by month in 2014",
                "resume": {"from_stage": "viz", "source_workflow_id": "x/y"},
            }
        )
    assert "resume" not in json.dumps(registry().family("document").input_model.model_json_schema())
    # Straight to Temporal: a document run on the step runner takes its restarts from the
    # memo only; a resume point in its input (another document's version, say) is refused
    # before any activity, so no row is touched.
    settings = DocumentSettings(roots=(DOCUMENTS,))
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
        first = await start_document(dev_client, task_queue, DOCUMENTS / "saga-pattern.md")
        source = await first.result()
        trace = await trace_run(dev_client, first.id, payloads=True)
        [validated] = [s.result for s in trace.steps if s.name == "validate_document"]
        forged = RecordedResume(from_stage="chunk", source_workflow_id=f"{first.id}/x", document=validated)
        other = await start_document(dev_client, task_queue, DOCUMENTS / "durable-execution.txt", resume=forged)
        with pytest.raises(WorkflowFailureError) as failed:
            await other.result()
    assert "saga restart ID --from STEP" in str(failed.value.cause)
    history = await other.fetch_history()
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in history.events)
    assert version_rows(db, source.document_id, source.version)["document_chunks"]  # untouched


def test_a_restart_drops_the_resume_point_a_source_carried_and_keeps_the_rest() -> None:
    from temporalio.api.common.v1 import Payload

    from sagaworks.client.restart import resume_point_of, without_fields

    def payload(data: dict[str, Any]) -> Payload:
        return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(data).encode())

    source = payload({"plan_id": "p1", "resume": {"from_stage": "causal", "outcomes": []}, "inject_fault": None})
    assert json.loads(without_fields(source, resume_point_of(source)).data) == {"plan_id": "p1", "inject_fault": None}
    # A family's own field of that name, not a resume point, stays.
    own = payload({"resume": {"cursor": 3}})
    assert resume_point_of(own) == () and without_fields(own, resume_point_of(own)) is own
    binary = Payload(metadata={"encoding": b"binary/plain"}, data=b"resume")
    assert resume_point_of(binary) == ()


async def test_a_step_run_again_under_its_name_and_a_detail_is_that_step_in_older_histories() -> None:
    """Plan runs recorded before the step runner summarised a mitigation "STAGE: mitigate
    ..." and the LLM pass "semantic: LLM pass by MODEL": each is its stage run again, whose
    result a restart reuses (else a restart after a mitigated stage was refused)."""
    from types import SimpleNamespace

    from temporalio.converter import DataConverter

    from sagaworks.client.replay import load_history
    from sagaworks.client.restart import source_steps
    from sagaworks.contracts.plans import STAGES

    histories = Path(__file__).parent / "histories"
    client: Any = SimpleNamespace(data_converter=DataConverter.default)
    mitigated = await source_steps(client, load_history(histories / "plan_mitigated.json"))
    assert [s for s in mitigated.order if s in STAGES] == list(STAGES)
    assert set(STAGES) <= set(mitigated.results)
    assert not any(s.startswith(("causal:", "semantic:")) for s in mitigated.order)
    with_model = await source_steps(client, load_history(histories / "plan_semantic_llm.json"))
    assert set(STAGES) <= set(with_model.results)
    assert "semantic" in with_model.order and not any(s.startswith("semantic:") for s in with_model.order)
