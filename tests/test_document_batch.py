"""Document batches: failures stay contained, continue-as-new, a worker killed mid-batch."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

from sqlalchemy import func, select
from temporalio.client import Client

from activities.db import Database
from activities.documents import ChunkRow, ConceptRow, DocumentRow, DocumentSettings
from activities.llm import GroqProvider
from bench.corpus import write_corpus
from tests.documents import GOOD_SAMPLES, document_row, version_rows
from tests.fake_chat_server import api_error, concepts_reply, fake_chat_server
from tests.workers import WorkerProcess
from worker import running_worker
from workflows.document_batch import DocumentBatch
from contracts.documents import BatchInput, BatchStatus


async def test_one_permanent_model_failure_fails_only_its_document(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    for sample in GOOD_SAMPLES[:3]:
        shutil.copy(sample, folder / sample.name)
    poisoned = folder / "poisoned.txt"
    poisoned.write_text("This document contains POISON that the model refuses.")

    def respond(body, _index):
        if "POISON" in body["messages"][-1]["content"]:
            return api_error(400, "content rejected by the model")
        return concepts_reply("durable execution", "saga")

    with fake_chat_server(respond) as server:
        llm = GroqProvider(api_key="k", model="test-model", base_url=server.base_url)
        async with running_worker(
            dev_client, db, task_queue=task_queue, llm=llm, documents=DocumentSettings(roots=(folder,))
        ):
            handle = await dev_client.start_workflow(
                DocumentBatch.run,
                # Two documents per run: the batch continues as new twice on the way.
                BatchInput(folder=str(folder), max_in_flight=2, documents_per_run=2),
                id=f"batch-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            result = await asyncio.wait_for(handle.result(), timeout=120)
            status = await handle.query(DocumentBatch.status, result_type=BatchStatus)

    assert (result.total, result.completed, result.failed, result.rejected) == (4, 3, 1, 0)
    [failed] = [d for d in result.documents if d.status == "FAILED"]
    assert failed.path == str(poisoned)
    assert failed.error == "ModelError: Groq HTTP 400: content rejected by the model"
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
        handle = await dev_client.start_workflow(
            DocumentBatch.run,
            BatchInput(folder=str(corpus), max_in_flight=3, chunk_size=500),
            id=f"batch-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        while (await handle.query(DocumentBatch.status, result_type=BatchStatus)).done < 2:
            await asyncio.sleep(0.1)
        worker.kill()
        await asyncio.sleep(1)
        worker.start()
        result = await asyncio.wait_for(handle.result(), timeout=300)
    finally:
        worker.stop()

    assert (result.total, result.completed) == (8, 8)
    db = Database(database_url)
    try:
        with db.transaction() as session:
            rows = session.scalars(select(DocumentRow)).all()
            assert {r.status for r in rows} == {"COMPLETED"} and len(rows) == 8
            for row in rows:
                chunks = session.scalar(select(func.count()).select_from(ChunkRow).where(ChunkRow.document_id == row.document_id))
                indexes = session.scalar(
                    select(func.count(func.distinct(ChunkRow.chunk_index))).where(ChunkRow.document_id == row.document_id)
                )
                assert chunks == indexes  # one row per chunk, however often a step ran
                concepts = session.scalar(select(func.count()).select_from(ConceptRow).where(ConceptRow.document_id == row.document_id))
                outcome = next(d for d in result.documents if d.path.endswith(Path(row.path).name))
                assert concepts == outcome.concept_count
    finally:
        db.dispose()
