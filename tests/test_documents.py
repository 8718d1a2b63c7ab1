"""The document pipeline on the dev server with the offline provider."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import multiprocessing
import os
import re
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from sagaworks import registry
from sagaworks.activities.db import Database
from sagaworks.activities.document import DEFAULT_ROOT, DocumentActivities, DocumentSettings
from sagaworks.activities.errors import ErrorClass, call_attempt, error
from sagaworks.activities.llm import FAILED_CALL_ATTEMPTS, ConceptList, LLMProvider, OfflineProvider
from sagaworks.contracts.document import (
    ChunkInput,
    DocumentInput,
    ExtractInput,
    ValidateInput,
    document_id_for,
    document_workflow_id,
)
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES as SAMPLE_INPUTS
from sagaworks.workflows.document import SEGMENT_CHUNKS, DocumentPipeline
from tests.documents import (
    BAD_SAMPLES,
    GOOD_SAMPLES,
    SAMPLES,
    Gate,
    PoisonAwareProvider,
    SlowOfflineProvider,
    chunk_texts,
    document_row,
    gated_worker,
    start_document,
    version_rows,
    wait_for_cancel_request,
)
from tests.orders import final_status, wait_for_status

WorkerFactory = Callable[..., AbstractAsyncContextManager[Worker]]


@pytest.fixture
def doc_worker(dev_client: Client, db: Database, task_queue: str, tmp_path: Path) -> WorkerFactory:
    """Start the real worker with a chosen extractor (default the offline one) and document limits."""

    def make(llm: LLMProvider | None = None, **limits: int) -> AbstractAsyncContextManager[Worker]:
        settings = DocumentSettings(roots=(SAMPLES, tmp_path), extractor=llm, **limits)
        return running_worker(dev_client, db, task_queue=task_queue, activity_threads=8, settings=[settings])

    return make


@pytest.mark.parametrize("path", GOOD_SAMPLES, ids=lambda p: p.name)
async def test_each_format_yields_stored_concepts(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, path: Path
) -> None:
    async with doc_worker():
        result = await (await start_document(dev_client, task_queue, path)).result()
    assert result.format == path.suffix.lstrip(".")
    assert result.provider == "offline" and result.model.startswith("yake-")
    assert result.concept_count >= 5 and result.top_concepts[0].salience >= result.top_concepts[-1].salience
    rows = version_rows(db, result.document_id, result.version)
    assert rows["document_chunks"] == result.chunk_count > 0
    assert rows["concepts"] == result.concept_count
    assert document_row(db, path).status == "COMPLETED"


async def test_rerunning_the_same_content_reuses_the_stored_result(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database
) -> None:
    path = SAMPLES / "durable-execution.txt"
    async with doc_worker():
        first = await (await start_document(dev_client, task_queue, path)).result()
        before = version_rows(db, first.document_id)
        second = await (await start_document(dev_client, task_queue, path)).result()
    assert second.reused and not first.reused
    assert second.top_concepts == first.top_concepts
    assert version_rows(db, first.document_id) == before
    assert str(db.engine.url.database) not in second.stored_in  # no database location in history
    assert second.stored_in.startswith("the worker's sqlite database")


async def test_a_new_chunk_size_is_processed_again_and_never_mixes_rows(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database
) -> None:
    path = SAMPLES / "durable-execution.txt"
    async with doc_worker():
        large = await (await start_document(dev_client, task_queue, path)).result()
        small = await (await start_document(dev_client, task_queue, path, chunk_size=200, chunk_overlap=0)).result()
        again = await (await start_document(dev_client, task_queue, path)).result()
    assert not small.reused and small.chunk_count > large.chunk_count
    assert again.reused and again.chunk_count == large.chunk_count
    assert version_rows(db, large.document_id, large.version)["document_chunks"] == large.chunk_count
    assert version_rows(db, small.document_id, small.version)["document_chunks"] == small.chunk_count


class FailOnSecondCall(OfflineProvider):
    """The offline provider, refusing for good from its second call once armed."""

    def __init__(self) -> None:
        super().__init__()
        self.armed, self.calls = False, 0

    def extract_concepts(self, text: str) -> ConceptList:
        if self.armed:
            self.calls += 1
            if self.calls >= 2:
                return PoisonAwareProvider().extract_concepts("POISON")  # raises: refused for good
        return super().extract_concepts(text)


async def test_a_failing_rerun_leaves_an_earlier_runs_rows_alone(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "notes.md"
    first_text = "\n\n".join(f"Section {i}: sagas compensate completed steps in reverse. " * 8 for i in range(6))
    llm = FailOnSecondCall()
    async with doc_worker(llm):
        path.write_text(first_text)
        first = await (await start_document(dev_client, task_queue, path, chunk_size=300, extract_window=1)).result()
        stored = version_rows(db, first.document_id, first.version)
        path.write_text(first_text + "\n\nA later edit about circuit breakers.")
        await (await start_document(dev_client, task_queue, path, chunk_size=300, extract_window=1)).result()
        path.write_text(first_text)  # back to the first version, whose rows are stored
        llm.armed = True
        third = await (await start_document(dev_client, task_queue, path, chunk_size=300, extract_window=1)).result()
    assert third.reused and third.top_concepts == first.top_concepts
    assert version_rows(db, first.document_id, first.version) == stored


def _rejections(tmp_path: Path) -> list[tuple[Path, str]]:
    outside = tmp_path.parent / "outside.txt"
    outside.write_text("not under any allowed root")
    link = tmp_path / "link.txt"
    link.symlink_to(outside)
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    reasons = {
        "bad-empty.txt": "empty file",
        "bad-mislabelled.pdf": "mislabelled: extension .pdf but the content is txt",
        "bad-latin1.txt": "undecodable text",
        "bad-image.txt": "unsupported type image/png",
        "bad-corrupt.pdf": "corrupt PDF",
        "bad-encrypted.pdf": "encrypted PDF: it needs a password",
        "bad-notaword.docx": "not a .docx",
        "bad-program.exe": "unsupported type",
    }
    cases = [(p, reasons[p.name]) for p in BAD_SAMPLES]
    return cases + [
        (tmp_path / "missing.txt", "file not found"),
        (outside, f"outside the allowed document roots: {SAMPLES}:{tmp_path} (this worker's document roots"),
        (link, "outside the allowed document roots"),
        (big, "over the limit of 4000"),
    ]


async def test_bad_inputs_are_rejected_with_the_file_and_the_reason(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, tmp_path: Path
) -> None:
    cases = _rejections(tmp_path)
    async with doc_worker(max_bytes=4000):
        handles = [await start_document(dev_client, task_queue, path) for path, _ in cases]
        for (path, reason), handle in zip(cases, handles, strict=True):
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
            cause = failure.value.cause
            assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput"
            assert str(path) in cause.message and reason in cause.message
            row = document_row(db, path)
            assert row.status == "REJECTED" and reason in (row.error_message or "")
            assert await final_status(handle) == "FAILED"


@pytest.mark.long  # a long run (`make test-long`): a 1,000-chunk document
async def test_a_large_document_keeps_every_history_small(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, tmp_path: Path
) -> None:
    path = tmp_path / "large.txt"
    sentence = "Durable execution keeps a workflow's progress in its event history. "
    path.write_text((sentence * 30 + "\n\n") * 1000)  # ~2 MB, ~1,000 chunks
    async with doc_worker():
        handle = await start_document(dev_client, task_queue, path)
        result = await asyncio.wait_for(handle.result(), timeout=600)
    assert result.chunk_count > 2 * SEGMENT_CHUNKS
    histories = [await handle.fetch_history()]
    async for child in dev_client.list_workflows(f"WorkflowId STARTS_WITH '{handle.id}/extract-'"):
        histories.append(await dev_client.get_workflow_handle(child.id).fetch_history())
    assert len(histories) == 1 + -(-result.chunk_count // SEGMENT_CHUNKS)
    sizes = [len(h.to_json().encode()) for h in histories]
    assert max(sizes) < 1_000_000, sizes


async def test_pause_resume_and_cancel_discard_the_run(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "slow.md"
    path.write_text("\n\n".join(f"Paragraph {i} about compensation and sagas. " * 20 for i in range(20)))
    async with doc_worker(SlowOfflineProvider(delay=0.1)):
        handle = await start_document(
            dev_client, task_queue, path, chunk_size=500, extract_window=1, chunks_per_activity=2
        )
        await _wait_status(handle, lambda s: s.done >= 2)
        await handle.signal(DocumentPipeline.pause)
        paused = await _wait_status(handle, lambda s: s.state == "paused")
        # Paused: the activity in flight when the pause came (two chunks) ends, then nothing
        # more starts. Its events are in the history: wait until they stop changing.
        settled = await _settled_history_length(handle)
        assert (await handle.query(DocumentPipeline.status)).done <= paused.done + 2
        assert len([e async for e in handle.fetch_history_events()]) == settled
        await handle.signal(DocumentPipeline.resume)
        await _wait_status(handle, lambda s: s.done >= paused.done + 2)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    row = document_row(db, path)
    assert row.status == "CANCELED"
    assert version_rows(db, row.document_id) == {"document_chunks": 0, "concept_mentions": 0, "concepts": 0}


def _wait_status(handle, predicate):
    return wait_for_status(handle, predicate, query=DocumentPipeline.status)


async def _settled_history_length(handle) -> int:
    """The history's length once no activity is scheduled or running (polled, bounded)."""
    for _ in range(600):
        description = await handle.describe()
        if not description.raw_description.pending_activities:
            return len([e async for e in handle.fetch_history_events()])
        await asyncio.sleep(0.05)
    raise AssertionError("activities kept running while paused")


def test_samples_cover_every_format() -> None:
    assert {p.suffix for p in GOOD_SAMPLES} == {".txt", ".md", ".html", ".pdf", ".docx"}


# One finalisation step owns the row's final state: each way a run can end.


async def test_rejected_at_validate_finalises_rejected(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database
) -> None:
    path = SAMPLES / "bad-corrupt.pdf"
    async with doc_worker():
        handle = await start_document(dev_client, task_queue, path)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    row = document_row(db, path)
    assert (row.status, row.error_class) == ("REJECTED", "InvalidInput") and "corrupt PDF" in (row.error_message or "")
    assert row.run_key is not None and row.run_key.startswith(handle.id)


async def test_rejected_at_chunk_finalises_rejected(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    path = tmp_path / "changing.txt"
    path.write_text("Sagas compensate completed steps when a later step fails. " * 20)
    gate = Gate("chunk")
    async with gated_worker(dev_client, db, task_queue, DocumentSettings(roots=(tmp_path,)), gate):
        handle = await start_document(dev_client, task_queue, path)
        await gate.wait_entered()
        path.write_text("Someone edited the file after it was validated.")
        gate.released.set()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert "the file changed while it was being processed" in str(failure.value.cause)
    row = document_row(db, path)
    assert (row.status, row.error_class) == ("REJECTED", "InvalidInput")
    assert version_rows(db, row.document_id) == {"document_chunks": 0, "concept_mentions": 0, "concepts": 0}


async def test_failed_at_extract_finalises_failed_and_removes_the_runs_rows(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "poisoned.md"
    path.write_text("\n\n".join(["An ordinary paragraph about sagas. " * 10] * 3 + ["POISON " * 10]))
    async with doc_worker(PoisonAwareProvider()):
        handle = await start_document(dev_client, task_queue, path, chunk_size=300, extract_window=1)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ModelError"
    # Named: one extraction activity takes several chunks, and only that one failed.
    assert re.fullmatch(r"chunk \d+: model refused the content \(HTTP 400\)", cause.message)
    assert cause.details[0]["failed_step"] == "extract" and cause.details[0]["removed_rows"] > 0
    row = document_row(db, path)
    assert (row.status, row.error_class) == ("FAILED", "ModelError")
    assert version_rows(db, row.document_id) == {"document_chunks": 0, "concept_mentions": 0, "concepts": 0}


@pytest.mark.parametrize("step", ["validate", "extract"])
async def test_cancelled_mid_step_finalises_canceled_after_the_step_ends(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path, step: str
) -> None:
    path = tmp_path / "cancelled.md"
    path.write_text("\n\n".join(f"Paragraph {i} about compensation and sagas. " * 10 for i in range(5)))
    gate = Gate(step)
    async with gated_worker(dev_client, db, task_queue, DocumentSettings(roots=(tmp_path,)), gate):
        handle = await start_document(dev_client, task_queue, path, chunk_size=300)
        await gate.wait_entered()
        await handle.cancel()
        await wait_for_cancel_request(handle)
        gate.released.set()  # the step commits after the cancel: its writes must not survive
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    row = document_row(db, path)
    assert (row.status, row.error_class) == ("CANCELED", "Cancelled")
    assert version_rows(db, row.document_id) == {"document_chunks": 0, "concept_mentions": 0, "concepts": 0}


class BuggyProvider(OfflineProvider):
    """A provider with a bug: it builds a concept our model refuses (pydantic raises)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def extract_concepts(self, text: str) -> ConceptList:
        self.calls += 1
        return ConceptList.model_validate({"concepts": [{"name": "saga", "kind": "term", "salience": 5}]})


async def test_an_unexpected_pydantic_error_is_our_bug_retried_then_failed(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "note.txt"
    path.write_text("A short note about sagas.")
    llm = BuggyProvider()
    async with doc_worker(llm):
        handle = await start_document(dev_client, task_queue, path)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InternalError"
    assert "validation error for Concept" in cause.message
    assert llm.calls == FAILED_CALL_ATTEMPTS
    row = document_row(db, path)
    assert (row.status, row.error_class) == ("FAILED", "InternalError")


async def test_one_document_one_workflow_id_whatever_the_path_or_id_given(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, tmp_path: Path
) -> None:
    real = tmp_path / "docs" / "real.txt"
    real.parent.mkdir()
    real.write_text("Durable execution keeps a workflow's progress in its history.")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    own_id = document_workflow_id(document_id_for(str(real)))
    assert document_id_for(f"{tmp_path}/docs/../docs/real.txt") == document_id_for(str(real))
    async with doc_worker():
        for path, workflow_id in [(link, "any-id-at-all"), (tmp_path / "docs" / ".." / "link.txt", "another-id")]:
            result = await dev_client.execute_workflow(
                DocumentPipeline.run, DocumentInput(path=str(path)), id=workflow_id, task_queue=task_queue
            )
            assert result.path == str(real)
    row = document_row(db, real)
    assert row.status == "COMPLETED" and row.run_key is not None and row.run_key.startswith(f"{own_id}/")
    runs = [e.id async for e in dev_client.list_workflows(f"WorkflowId = '{own_id}'")]
    assert len(runs) == 2  # each start handed the work to the document's own id


async def test_relative_paths_start_at_the_first_root_so_the_catalog_samples_run(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database
) -> None:
    document = registry().family("document")
    [sample] = document.sample_paths()
    request = document.parse(sample.read_bytes())
    assert not Path(request.path).is_absolute()
    async with doc_worker():
        result = await dev_client.execute_workflow(
            DocumentPipeline.run, request, id=document.workflow_id(request), task_queue=task_queue
        )
    assert result.path == str(SAMPLES / json.loads((SAMPLE_INPUTS / "inputs/document.json").read_text())["path"])
    assert document_row(db, SAMPLES / "saga-pattern.md").status == "COMPLETED"


async def test_database_waits_inside_an_activity_keep_it_heartbeating(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "note.txt"
    path.write_text("A note about sagas, written while another process holds the database.")
    async with doc_worker():
        holder = sqlite3.connect(str(db.engine.url.database), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # validate_document waits for this lock
        try:
            handle = await start_document(dev_client, task_queue, path)
            # Released only once the server saw a heartbeat of the waiting step: without
            # heartbeats the wait would outlast the heartbeat timeout and the attempt be lost.
            for _ in range(600):
                pending = (await handle.describe()).raw_description.pending_activities
                if any(
                    p.activity_type.name == "validate_document" and p.HasField("last_heartbeat_time") for p in pending
                ):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("validate_document never heartbeat while it waited for the database")
            holder.execute("COMMIT")
            result = await handle.result()
        finally:
            holder.close()
    assert result.concept_count > 0


def test_the_default_document_root_is_the_demo_samples_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGAWORKS_DOCUMENT_ROOTS", raising=False)
    settings = DocumentSettings()
    assert settings.roots == (DEFAULT_ROOT,) == (SAMPLES,)
    assert settings.describe_roots() == f"{SAMPLES} (this worker's document roots, default)"
    monkeypatch.setenv("SAGAWORKS_DOCUMENT_ROOTS", os.pathsep.join(["/srv/a", "/srv/b"]))
    assert DocumentSettings().roots == (Path("/srv/a"), Path("/srv/b"))


def test_compose_workers_read_documents_from_a_mounted_root_only() -> None:
    import yaml

    compose = yaml.safe_load((SAMPLES.parents[1] / "docker-compose.yml").read_text())
    worker = compose["services"]["worker"]
    root = worker["environment"]["SAGAWORKS_DOCUMENT_ROOTS"]
    mounts = {volume.rsplit(":", 2)[1]: volume for volume in worker["volumes"]}
    assert mounts[root].endswith(":ro") and "samples/documents" in mounts[root]


async def test_the_worker_parses_splits_and_runs_yake_in_its_process_pool(
    dev_client: Client, task_queue: str, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Broken in this process only: the pool's spawned processes import their own copies, so
    # the document completes only if the worker sends that work to them (CPU-bound work must
    # not hold the GIL the worker's event loop and activity threads need).
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from sagaworks.activities import llm

    def in_the_worker_process(*_args: object) -> None:
        raise AssertionError("CPU-bound document work ran in the worker's own process")

    monkeypatch.setenv("SAGAWORKS_LLM_PROVIDER", "offline")
    monkeypatch.setattr(llm, "_yake_extractor", in_the_worker_process)
    monkeypatch.setattr(RecursiveCharacterTextSplitter, "split_text", in_the_worker_process)
    settings = DocumentSettings(roots=(SAMPLES, tmp_path))
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
        result = await (await start_document(dev_client, task_queue, SAMPLES / "durable-execution.txt")).result()
    assert result.provider == "offline" and result.model.startswith("yake-")
    assert result.chunk_count >= 1 and result.concept_count >= 5


class CountingProvider(OfflineProvider):
    """The offline extractor counting its calls under a lock (which no process can be sent)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock, self.calls = threading.Lock(), 0

    def extract_concepts(self, text: str) -> ConceptList:
        with self.lock:
            self.calls += 1
        return super().extract_concepts(text)


async def test_the_settings_extractor_answers_in_the_worker_while_parsing_runs_in_the_process_pool(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str
) -> None:
    extractor = CountingProvider()
    async with doc_worker(extractor):
        result = await (await start_document(dev_client, task_queue, SAMPLES / "durable-execution.txt")).result()
    # This very extractor answered every chunk, though the settings holding it were not
    # sent to the process pool that parsed and split the document.
    assert result.provider == "offline" and extractor.calls == result.chunk_count > 0


def test_a_broken_process_pool_is_the_workers_fault_and_is_retried(db: Database) -> None:
    """A pool child that dies (out of memory, a native crash) must not fail the document
    as unparseable: the error names the pool and Temporal retries it."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        activities = DocumentActivities(db, OfflineProvider(), cpu_pool=pool)
        with pytest.raises(ApplicationError) as broken:
            activities._cpu(os._exit, 3)
    assert broken.value.type == "InternalError" and not broken.value.non_retryable
    assert "process pool is broken" in broken.value.message


async def test_several_chunks_per_activity_store_what_one_chunk_per_activity_does(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, tmp_path: Path
) -> None:
    text = "\n\n".join(f"Part {i}: a saga compensates its completed steps in reverse order. " * 5 for i in range(12))
    runs = {  # name: (options, chunks per activity expected)
        "one": ({"chunks_per_activity": 1}, 1),
        "five": ({"chunks_per_activity": 5, "extract_window": 2}, 5),
        # The default (8) would leave the window of 8 mostly empty: as many as fill it.
        "default": ({}, 0),
    }
    handles = {}
    async with doc_worker():
        for name, (options, _per) in runs.items():
            (tmp_path / f"{name}.md").write_text(text)
            handles[name] = await start_document(
                dev_client, task_queue, tmp_path / f"{name}.md", chunk_size=300, **options
            )
        results = {name: await handle.result() for name, handle in handles.items()}
        status = await handles["five"].query(DocumentPipeline.status)
    count = results["one"].chunk_count
    fills_the_window = -(-count // 8)
    assert count >= 11 and fills_the_window < 8
    for name, (_options, per) in runs.items():
        per = per or fills_the_window
        result = results[name]
        assert (result.chunk_count, result.concept_count, result.top_concepts) == (
            count,
            results["one"].concept_count,
            results["one"].top_concepts,
        ), name
        summaries = [
            json.loads(event.user_metadata.summary.data)
            for event in (await handles[name].fetch_history()).events
            if event.activity_task_scheduled_event_attributes.activity_type.name == "extract_concepts"
        ]
        assert summaries == [
            f"chunk {start}" if per == 1 else f"chunks {start}-{min(start + per, count) - 1}"
            for start in range(0, count, per)
        ], name
    assert (status.done, status.total) == (count, count)


class InvalidOutputTwicePerChunk(OfflineProvider):
    """The offline provider, but its first two answers for each chunk are invalid: a
    retryable error, final from the chunk's third attempt on (``call_attempt``)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[str, int] = {}

    def extract_concepts(self, text: str) -> ConceptList:
        self.asked[text] = self.asked.get(text, 0) + 1
        if self.asked[text] <= 2:
            attempt = call_attempt()
            raise error(ErrorClass.MODEL, f"invalid output (attempt {attempt})", non_retryable=attempt >= 3)
        return super().extract_concepts(text)


async def test_each_chunk_of_an_activity_gets_its_own_model_attempts(
    dev_client: Client, doc_worker: WorkerFactory, task_queue: str, tmp_path: Path
) -> None:
    # Two chunks in one activity, each answered invalidly twice: with one budget for the
    # activity the second chunk's first failure (attempt 3) would be final.
    path = tmp_path / "two.md"
    path.write_text(
        "\n\n".join(f"{word} section: durable execution keeps the saga's progress. " * 4 for word in ("Alpha", "Beta"))
    )
    llm = InvalidOutputTwicePerChunk()
    async with doc_worker(llm):
        handle = await start_document(dev_client, task_queue, path, chunk_size=300, chunk_overlap=0, extract_window=1)
        result = await handle.result()
    assert result.chunk_count == 2 and sorted(llm.asked.values()) == [3, 3]
    attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in (await handle.fetch_history()).events
        if event.HasField("activity_task_started_event_attributes")
    ]
    assert max(attempts) == 5  # 3 for the first chunk, then 2 more for the second


class FailsOnceOnThirdCall(OfflineProvider):
    """The offline provider; its third call fails once as a transient model error."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def extract_concepts(self, text: str) -> ConceptList:
        self.texts.append(text)
        if len(self.texts) == 3:
            raise ApplicationError("model unavailable (HTTP 503)", type="ModelError")
        return super().extract_concepts(text)


def test_a_retried_extraction_skips_the_chunks_it_already_stored(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("\n\n".join(f"Section {i}: durable execution survives a crash. " * 6 for i in range(5)))
    llm = FailsOnceOnThirdCall()
    acts = DocumentActivities(db, llm, DocumentSettings(roots=(tmp_path,)))
    env = ActivityEnvironment()
    doc = env.run(acts.validate_document, ValidateInput(path=str(path), run_key="run-1", chunk_size=300))
    chunks = env.run(acts.chunk_document, ChunkInput(document=doc, run_key="run-1", chunk_size=300, chunk_overlap=0))
    assert chunks.chunk_count >= 4
    request = ExtractInput(
        document_id=doc.document_id, content_hash=doc.rows_key, chunk_index=0, run_key="run-1", chunk_count=4
    )
    with pytest.raises(ApplicationError) as failed:
        env.run(acts.extract_concepts, request)
    assert failed.value.message == "chunk 2: model unavailable (HTTP 503)" and not failed.value.non_retryable
    summary = env.run(acts.extract_concepts, request)  # Temporal's retry of the activity
    # Chunks 0 and 1 were stored: only chunk 2 (again) and chunk 3 are asked.
    texts = chunk_texts(db, doc.document_id, doc.rows_key)
    assert llm.texts == [texts[0], texts[1], texts[2], texts[2], texts[3]]
    assert summary.chunk_count == 4
    assert summary.concept_count == version_rows(db, doc.document_id, doc.rows_key)["concept_mentions"]


def test_a_chunks_attempts_count_from_the_attempt_that_first_asked_for_it(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("\n\n".join(f"Section {i}: durable execution survives a crash. " * 6 for i in range(3)))
    acts = DocumentActivities(db, InvalidOutputTwicePerChunk(), DocumentSettings(roots=(tmp_path,)))
    env = ActivityEnvironment()
    doc = env.run(acts.validate_document, ValidateInput(path=str(path), run_key="run-1", chunk_size=300))
    env.run(acts.chunk_document, ChunkInput(document=doc, run_key="run-1", chunk_size=300, chunk_overlap=0))
    request = ExtractInput(
        document_id=doc.document_id, content_hash=doc.rows_key, chunk_index=0, run_key="run-1", chunk_count=2
    )
    beats: list[tuple[int, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    # Attempt 3 of the activity; the attempt before stopped at chunk 0, first asked in attempt 2.
    env.info = dataclasses.replace(env.info, attempt=3, heartbeat_details=[0, 2])
    with pytest.raises(ApplicationError) as failed:
        env.run(acts.extract_concepts, request)
    assert failed.value.message.startswith("chunk 0: invalid output (attempt 2)")
    assert not failed.value.non_retryable and beats[-1] == (0, 2)
    # A chunk first asked in this attempt of the activity gets its own first attempt.
    with pytest.raises(ApplicationError) as first:
        env.run(acts.extract_concepts, request.model_copy(update={"chunk_index": 1, "chunk_count": 1}))
    assert first.value.message.startswith("chunk 1: invalid output (attempt 1)")
    assert not first.value.non_retryable and beats[-1] == (1, 3)
