"""Document batches: failures stay contained, continue-as-new, a worker killed mid-batch."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from bench.corpus import write_corpus
from sagaworks import registry
from sagaworks.activities.db import Database
from sagaworks.activities.document import ChunkRow, ConceptRow, DocumentRow, DocumentSettings, parse_text, split_text
from sagaworks.contracts.document import BatchInput, BatchResult
from sagaworks.worker import running_worker
from sagaworks.workflows.document_batch import DocumentBatch
from tests.documents import (
    GOOD_SAMPLES,
    SAMPLES,
    Gate,
    PoisonAwareProvider,
    all_document_rows,
    document_row,
    gated_worker,
    start_batch,
    version_rows,
)
from tests.orders import wait_for_status
from tests.workers import WorkerProcess


async def test_one_permanently_failing_document_fails_alone_and_the_batch_goes_on(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    for sample in GOOD_SAMPLES[:3]:
        shutil.copy(sample, folder / sample.name)
    poisoned = folder / "poisoned.txt"
    poisoned.write_text("This document contains POISON that the model refuses.")

    # The concept extractor refuses the poisoned text for good (a model's refusal would
    # only make the gateway fall back on the extractor).
    settings = DocumentSettings(roots=(folder,), extractor=PoisonAwareProvider())
    async with running_worker(dev_client, db, task_queue=task_queue, settings=[settings]):
        # Two documents per run: the batch continues as new twice on the way.
        handle = await start_batch(
            dev_client, task_queue, BatchInput(folder=str(folder), max_in_flight=2, documents_per_run=2)
        )
        result = await asyncio.wait_for(handle.result(), timeout=120)
        status = await handle.query(DocumentBatch.status)

    assert (result.total, result.completed, result.failed, result.rejected) == (4, 3, 1, 0)
    [failed] = [d for d in result.documents if d.status == "FAILED"]
    assert failed.path == str(poisoned)
    assert failed.error == "ModelError: chunk 0: model refused the content (HTTP 400)"
    row = document_row(db, poisoned)
    assert (row.status, row.error_class) == ("FAILED", "ModelError")
    assert version_rows(db, row.document_id) == {"document_chunks": 0, "concept_mentions": 0, "concepts": 0}
    runs = [e async for e in dev_client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 2  # 4 documents, 2 per run
    assert (status.done, status.total, status.failed) == (4, 4, 1)


async def test_worker_killed_mid_batch_every_document_ends_final_without_duplicates(
    dev_client: Client, dev_address: str, task_queue: str, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, count=8, megabytes=0.4)
    database_url = f"sqlite:///{tmp_path / 'app.db'}"
    worker = WorkerProcess(
        dev_address, task_queue, database_url, tmp_path / "worker.log", SAGAWORKS_DOCUMENT_ROOTS=str(corpus)
    )
    worker.start()
    try:
        handle = await start_batch(
            dev_client, task_queue, BatchInput(folder=str(corpus), max_in_flight=3, chunk_size=500)
        )
        await wait_for_status(handle, lambda s: s.done >= 2, timeout=300, query=DocumentBatch.status)
        worker.kill()  # returns once the process is gone; its tasks time out on the server
        worker.start()
        result = await asyncio.wait_for(handle.result(), timeout=300)
    finally:
        worker.stop()

    assert (result.total, result.completed) == (8, 8)
    db = Database(database_url)
    settings = DocumentSettings(roots=(corpus,))
    try:
        with db.transaction() as session:
            rows = session.scalars(select(DocumentRow)).all()
            assert {r.status for r in rows} == {"COMPLETED"} and len(rows) == 8
            for row in rows:
                path = Path(row.path)
                # Every stored row has the format its file was read as.
                expected = split_text(parse_text(path, path.read_bytes(), row.format, settings), 500, 200)  # type: ignore[arg-type]
                chunks = session.scalars(
                    select(ChunkRow.text).where(ChunkRow.document_id == row.document_id).order_by(ChunkRow.chunk_index)
                ).all()
                # Every chunk stored once, in order, none missing, no second chunking mixed in,
                # however often a step ran before and after the kill.
                assert list(chunks) == expected
                concepts = session.scalar(
                    select(func.count()).select_from(ConceptRow).where(ConceptRow.document_id == row.document_id)
                )
                outcome = next(d for d in result.documents if d.path == row.path)
                assert outcome.concept_count is not None and concepts == outcome.concept_count > 0
    finally:
        db.dispose()


def _batch_worker(dev_client: Client, db: Database, task_queue: str, root: Path):
    return running_worker(
        dev_client,
        db,
        task_queue=task_queue,
        activity_threads=4,
        settings=[DocumentSettings(roots=(root,))],
    )


async def test_a_file_name_no_input_may_carry_rejects_that_document_only(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    folder = tmp_path / "documents"
    (folder / "nested" / "deeper").mkdir(parents=True)
    shutil.copy(SAMPLES / "saga-pattern.md", folder / "saga-pattern.md")
    shutil.copy(SAMPLES / "durable-execution.txt", folder / "nested" / "deeper" / "durable-execution.txt")
    odd = folder / "bell\x07name.txt"
    odd.write_text("A legal Linux file name with a control character in it.")
    async with _batch_worker(dev_client, db, task_queue, tmp_path):
        result = await (await start_batch(dev_client, task_queue, BatchInput(folder="documents"))).result()
    outcomes = {Path(d.path).name: d for d in result.documents}
    assert (result.total, result.completed, result.rejected) == (3, 2, 1)
    assert outcomes["bell\x07name.txt"].status == "REJECTED"
    assert "control characters" in (outcomes["bell\x07name.txt"].error or "")
    # Subfolders are walked: the nested document was processed like the others.
    assert outcomes["durable-execution.txt"].status == "COMPLETED"


async def test_the_catalog_sample_batch_runs_relative_to_the_document_root(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    batch = registry().family("document-batch")
    [sample] = batch.sample_paths()
    request = batch.parse(sample.read_bytes())
    async with _batch_worker(dev_client, db, task_queue, SAMPLES):
        result: BatchResult = await (await start_batch(dev_client, task_queue, request)).result()
    assert result.total == len([p for p in SAMPLES.iterdir() if p.is_file()])
    assert result.completed == len(GOOD_SAMPLES) and result.failed == 0
    assert {r.status for r in all_document_rows(db)} == {"COMPLETED", "REJECTED"}


async def test_a_pause_just_before_continue_as_new_is_carried_into_the_next_run(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    for index in range(3):
        (folder / f"note-{index}.txt").write_text(f"Note {index} about sagas and their compensations.")
    gate = Gate("validate")
    async with gated_worker(dev_client, db, task_queue, DocumentSettings(roots=(folder,)), gate):
        handle = await start_batch(
            dev_client, task_queue, BatchInput(folder=str(folder), max_in_flight=1, documents_per_run=1)
        )
        first_run = (await handle.describe()).run_id
        await gate.wait_entered()  # the run's last child is in flight: it continues as new next
        await handle.signal(DocumentBatch.pause)
        gate.released.set()
        for _ in range(1200):
            if (await handle.describe()).run_id != first_run:
                break
            await asyncio.sleep(0.05)
        # The newest run.
        latest: WorkflowHandle[DocumentBatch, BatchResult] = dev_client.get_workflow_handle_for(
            DocumentBatch.run, handle.id
        )
        status = await wait_for_status(latest, lambda s: s.done == 1, query=DocumentBatch.status)
        assert status.state == "paused" and status.in_flight == 0
        await handle.signal(DocumentBatch.resume)
        result = await handle.result()
    assert (result.total, result.completed) == (3, 3)


async def test_status_reports_a_cancelled_or_failed_batch(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "note.txt").write_text("A note about sagas.")
    gate = Gate("validate")
    async with gated_worker(dev_client, db, task_queue, DocumentSettings(roots=(tmp_path,)), gate):
        cancelled = await start_batch(dev_client, task_queue, BatchInput(folder=str(folder)))
        await gate.wait_entered()
        await cancelled.cancel()
        gate.released.set()
        with pytest.raises(WorkflowFailureError):
            await cancelled.result()
        failed = await start_batch(dev_client, task_queue, BatchInput(folder="no-such-folder"))
        with pytest.raises(WorkflowFailureError) as failure:
            await failed.result()
        assert "no-such-folder: not a folder" in str(failure.value.cause.__cause__)
        assert (await cancelled.query(DocumentBatch.status)).state == "canceled"
        assert (await failed.query(DocumentBatch.status)).state == "failed"


async def test_a_batch_restarted_from_process_reuses_its_listing(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    from sagaworks.client.postmortem import restart_run
    from tests.test_steps_restart import executed

    folder = tmp_path / "documents"
    folder.mkdir()
    for index in range(2):
        (folder / f"note-{index}.txt").write_text(f"Note {index} about sagas and their compensations.")
    async with _batch_worker(dev_client, db, task_queue, folder):
        handle = await start_batch(dev_client, task_queue, BatchInput(folder=str(folder)))
        first = await handle.result()
        again = await restart_run(dev_client, handle.id, "process")
        typed = dev_client.get_workflow_handle(again.id, run_id=again.result_run_id, result_type=BatchResult)
        result = await typed.result()
        status = await typed.query(DocumentBatch.status)
    assert (await executed(typed))["store_listing"] == 0
    assert (await executed(dev_client.get_workflow_handle(handle.id, run_id=handle.result_run_id)))[
        "store_listing"
    ] == 1
    assert [(t.step, t.reused) for t in status.steps] == [("list", True), ("process", False)]
    assert (result.total, result.completed) == (first.total, first.completed) == (2, 2)


async def test_the_listing_is_read_in_pages_and_outcomes_past_their_budget_are_counted(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch carries its stored listing's id and offset, never the paths; pages and the
    listed outcomes are bounded in bytes (made small here: two paths a page, two outcomes)."""
    import sagaworks.activities.document.listing as documents_activities
    import sagaworks.contracts.document as documents_contracts

    folder = tmp_path / "documents"
    folder.mkdir()
    for n in range(7):
        (folder / f"{n}-{'long' * 40}.txt").write_text(f"Document {n} records a saga step and its compensation.")
    path_bytes = len(str(folder / f"0-{'long' * 40}.txt").encode()) + 4
    monkeypatch.setattr(documents_activities, "LISTING_PAGE_BYTES", 2 * path_bytes)
    monkeypatch.setattr(documents_contracts, "LISTED_OUTCOME_BYTES", 2 * (path_bytes + 120))
    async with running_worker(dev_client, db, task_queue=task_queue, settings=[DocumentSettings(roots=(folder,))]):
        handle = await start_batch(
            dev_client, task_queue, BatchInput(folder=str(folder), max_in_flight=3, documents_per_run=3)
        )
        result = await asyncio.wait_for(handle.result(), timeout=120)
    assert (result.total, result.completed, len(result.documents), result.documents_not_listed) == (7, 7, 2, 5)
    runs = [e async for e in dev_client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 3  # 7 documents, 3 per run
    pages, inputs = 0, []
    for run in runs:
        async for event in dev_client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history_events():
            pages += event.activity_task_scheduled_event_attributes.activity_type.name == "listing_page"
            if event.workflow_execution_started_event_attributes.input.payloads:
                inputs.append(json.loads(event.workflow_execution_started_event_attributes.input.payloads[0].data))
    assert pages == 5  # pages of 2 + 1 paths in the first two runs (3 each), of 1 in the last
    carried = [i for i in inputs if i["listing"] is not None]
    assert len(carried) == 2 and all(i["paths"] is None for i in inputs)
    assert sorted(i["offset"] for i in carried) == [3, 6]
