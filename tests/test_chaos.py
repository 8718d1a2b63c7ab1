"""The chaos run (`make chaos`) at a small size: workers killed, the server restarted."""

from __future__ import annotations

from pathlib import Path

from sagaworks.activities.db import Database
from sagaworks.activities.documents import ChunkRow, DocumentRow
from sagaworks.contracts.documents import BatchResult, DocumentOutcome, DocumentResult
from tests.chaos import ChaosReport, document_violations, run_chaos


async def test_sagas_and_documents_survive_killed_workers_and_a_server_restart() -> None:
    report = await run_chaos(sagas=40, kills=5, documents=4, seed=11, bound_seconds=300)
    assert report.kills == 5 and report.server_restarts == 1
    assert len(report.outcomes) == 40
    assert report.violations == []
    assert report.batch is not None and report.batch.completed == 4


def test_the_document_check_sees_a_lost_chunk_row(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with db.transaction() as session:
            session.add(DocumentRow(document_id="d1", path="/a.txt", status="COMPLETED"))
            for index in (0, 1, 3):  # chunk 2 lost
                session.add(ChunkRow(document_id="d1", content_hash="h", chunk_index=index, text="x", run_key="r"))
        result = DocumentResult(
            document_id="d1", path="/a.txt", content_hash="h", format="txt", chunk_count=3, concept_count=0,
            provider="offline", model="m", stored_in="db", top_concepts=[],
        )
        batch = BatchResult(
            folder="/", total=1, completed=1, rejected=0, failed=0,
            documents=[DocumentOutcome(path="/a.txt", workflow_id="w", status="COMPLETED", concept_count=0)],
        )
        report = ChaosReport(batch=batch, documents=[(result, 4)])
        assert document_violations(db, report, documents=1) == [
            "document /a.txt: chunk indexes [0, 1, 3]... (3 rows), its run chunked it into 4"
        ]
        report.documents = [(result, 3)]
        assert len(document_violations(db, report, documents=1)) == 1  # 3 rows, but not 0..2
    finally:
        db.dispose()
