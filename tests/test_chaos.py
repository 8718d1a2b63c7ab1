"""The chaos run (`make chaos`) at a small size: every family's runs, workers killed, the server restarted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sagaworks import registry
from sagaworks.activities.db import Database
from sagaworks.activities.document import ChunkRow, DocumentRow
from sagaworks.activities.mcp_servers import CONFIG_ENV
from sagaworks.activities.news import DigestRow, SeenArticleRow
from sagaworks.activities.routing import RoutedRequestRow
from sagaworks.client.replay import load_history
from sagaworks.contracts.document import BatchResult, DocumentOutcome, DocumentResult
from tests.chaos import (
    ChaosReport,
    FamilyRun,
    document_violations,
    news_violations,
    replay_violations,
    routing_violations,
    run_chaos,
    summary,
    unavailable_service,
)
from tests.drifted_order import DriftedOrderSaga
from tests.postgres import POSTGRES_URL_ENV


async def test_every_family_survives_killed_workers_and_a_server_restart() -> None:
    report = await run_chaos(sagas=20, kills=3, documents=3, seed=11, bound_seconds=420, server_restarts=1, copies=1)
    print("\n".join(summary(report)))
    assert report.violations == []
    assert report.kills == 3 and report.server_restarts == 1
    assert report.database_restarts == (1 if os.environ.get(POSTGRES_URL_ENV) else 0)  # PostgreSQL's own restart
    assert len(report.outcomes) == 20
    assert report.batch is not None and report.batch.completed == 3
    # Every registered family ran (its demos, one cancelled run of each) or was skipped
    # for a named reason; the news digest also ran from its schedule.
    ran = {run.family for run in report.runs}
    assert ran | set(report.skipped) == set(registry().names) | {u.name for u in registry().unavailable}
    assert {run.how for run in report.runs} >= {"demo", "cancelled"}
    if "news-digest" in ran:
        assert any(run.how == "scheduled" for run in report.runs)
    assert report.replayed > len(report.runs)


def test_the_document_check_sees_a_lost_chunk_row(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with db.transaction() as session:
            session.add(DocumentRow(document_id="d1", path="/a.txt", status="COMPLETED"))
            for index in (0, 1, 3):  # chunk 2 lost
                session.add(ChunkRow(document_id="d1", content_hash="h", chunk_index=index, text="x", run_key="r"))
        result = DocumentResult(
            document_id="d1",
            path="/a.txt",
            content_hash="h",
            format="txt",
            chunk_count=3,
            concept_count=0,
            provider="offline",
            model="m",
            stored_in="db",
            top_concepts=[],
        )
        batch = BatchResult(
            folder="/",
            total=1,
            completed=1,
            rejected=0,
            failed=0,
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


def _digest(workflow_id: str, key: str, articles: list[str]) -> FamilyRun:
    result = {"stored": True, "digest_key": key, "articles": [{"key": article} for article in articles]}
    return FamilyRun("news-digest", "weekly.json", workflow_id, "COMPLETED", status="COMPLETED", result=result)


def test_the_news_check_sees_an_article_published_twice(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with db.transaction() as session:
            for key in ("d1", "d2"):
                session.add(DigestRow(digest_key=key, name="weekly", markdown="", html=""))
            session.add(SeenArticleRow(article_key="a1", digest_key="d1"))
            session.add(SeenArticleRow(article_key="a2", digest_key="d2"))
        assert news_violations(db, [_digest("w1", "d1", ["a1"]), _digest("w2", "d2", ["a2"])]) == []
        assert news_violations(db, [_digest("w1", "d1", ["a1"]), _digest("w2", "d2", ["a2", "a1"])]) == [
            "article a1 published twice: by w1 and w2",
            "article a1 of digest d2 is marked seen by d1",
        ]
    finally:
        db.dispose()


def test_the_routing_check_sees_a_row_that_disagrees_with_its_run(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with db.transaction() as session:
            session.add(
                RoutedRequestRow(
                    request_id="r1", requester="x", tier="admin", outcome="rejected", decided_by=None, response=""
                )
            )
        run = FamilyRun(
            "routing",
            "admin.json",
            "w",
            "COMPLETED",
            status="COMPLETED",
            result={"request_id": "r1", "handled": {"by": "h"}, "decided_by": "alice"},
        )
        missing = FamilyRun(
            "routing",
            "admin.json",
            "w2",
            "COMPLETED",
            status="COMPLETED",
            result={"request_id": "r2", "handled": None, "decided_by": None},
        )
        assert routing_violations(db, [run, missing]) == [
            "request r1: stored rejected by None, the run says handled by alice",
            "request r2 completed but has no stored row",
        ]
    finally:
        db.dispose()


async def test_the_replay_check_names_a_history_the_code_no_longer_follows() -> None:
    history = load_history(Path(__file__).parent / "histories" / "order_completed-20261202.json")
    assert await replay_violations([history]) == []
    [violation] = await replay_violations([history], workflows=[DriftedOrderSaga])
    assert violation.startswith(f"replay of {history.workflow_id} (run {history.run_id}) failed: NondeterminismError")


def test_a_family_whose_mcp_server_is_not_installed_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "servers.toml"
    config.write_text(
        '[servers.files]\ncommand = "node"\nrequires = "node"\n'
        f'args = ["{tmp_path}/node_modules/server-filesystem/dist/index.js"]\n'
    )
    monkeypatch.setenv(CONFIG_ENV, str(config))
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    support = registry().family("support-ticket")
    assert unavailable_service(support) == (
        f"MCP server files: {tmp_path}/node_modules/server-filesystem/dist/index.js not found (run `make mcp-servers`)"
    )
    assert unavailable_service(registry().family("routing")) is None  # no MCP server needed
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert unavailable_service(support) == "MCP server files: node is not installed"
