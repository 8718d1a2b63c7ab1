"""The chaos run (`make chaos`) at a small size: workers killed, the server restarted."""

from __future__ import annotations

from tests.chaos import run_chaos


async def test_sagas_and_documents_survive_killed_workers_and_a_server_restart() -> None:
    report = await run_chaos(sagas=40, kills=5, documents=4, seed=11, bound_seconds=300)
    assert report.kills == 5 and report.server_restarts == 1
    assert len(report.outcomes) == 40
    assert report.violations == []
    assert report.batch is not None and report.batch.completed == 4
