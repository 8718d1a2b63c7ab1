"""Chaos run: sagas and a document batch while workers die and the server restarts.

    python -m tests.chaos [--sagas 200] [--kills 5] [--documents 20]      # `make chaos`

Starts the embedded server on a SQLite file and two workers (real processes), starts
order sagas with random transient and permanent failures and random cancellations plus a
document batch, SIGKILLs a random worker at random moments (restarting it each time) and
restarts the Temporal server once mid-run. Then checks: every saga and document reached a
final state within the bound; stock is conserved; every charge of a failed or cancelled
order is refunded exactly once and no order is charged twice (both counted in the payment
ledger); every completed document has exactly the chunk rows its run reported, indexed
0..n-1, and the concept rows its result counts.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from sagaworks.activities.db import Database
from sagaworks.activities.documents import ChunkRow, ConceptRow, DocumentRow
from sagaworks.activities.orders import invariant_violations
from bench.corpus import write_corpus
from sagaworks.client.connection import DATA_CONVERTER
from sagaworks.client.devserver import dev_server_command, wait_until_serving
from tests.orders import make_order, start_order
from tests.ports import free_port
from tests.workers import WorkerProcess
from sagaworks.workflows.document import DocumentPipeline
from sagaworks.workflows.document_batch import DocumentBatch
from sagaworks.contracts.documents import BatchInput, BatchResult, DocumentResult
from sagaworks.contracts.orders import ORDER_STEPS

FINAL = {"COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"}


@dataclass
class ChaosReport:
    outcomes: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    kills: int = 0
    server_restarts: int = 0
    seconds: float = 0.0
    batch: BatchResult | None = None
    documents: list[tuple[DocumentResult, int | None]] = field(default_factory=list)
    """The result of each completed document of the batch and the chunk count its chunk
    step reported (its ``status`` query's total; None when it reused a stored result)."""

    @property
    def ok(self) -> bool:
        return not self.violations


class Server:
    """The embedded server as a process that can be stopped and started on one history."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.command = dev_server_command(db_file=folder / "temporal.db", port=self.port, headless=True)
        self.log = open(folder / "server.log", "ab")  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=self.log)
        await wait_until_serving(self.address, timeout=60)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


async def _cancel(handle: WorkflowHandle) -> None:
    try:
        await handle.cancel()
    except RPCError:
        pass  # already finished: nothing to cancel


async def _final_status(client: Client, handle: WorkflowHandle, deadline: float) -> str:
    # Polls describe() so a server restart only costs a retry, not the whole wait.
    while time.monotonic() < deadline:
        try:
            status = (await handle.describe()).status
            if status is not None and status.name in FINAL:
                return status.name
        except RPCError:
            pass
        await asyncio.sleep(0.5)
    return "STILL RUNNING"


async def run_chaos(sagas: int, kills: int, documents: int, seed: int = 7, bound_seconds: float = 600) -> ChaosReport:
    """Run the chaos scenario in a temporary folder and return what it found."""
    rng = random.Random(seed)
    report = ChaosReport()
    started_at = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus"
        write_corpus(corpus, count=documents, megabytes=documents * 0.02)
        server = Server(folder)
        await server.start()
        task_queue = f"chaos-{uuid.uuid4()}"
        database_url = f"sqlite:///{folder / 'app.db'}"
        workers = [
            WorkerProcess(server.address, task_queue, database_url, folder / f"worker-{i}.log",
                          SAGAWORKS_DOCUMENT_ROOTS=str(corpus), SAGAWORKS_LLM_PROVIDER="offline")
            for i in range(2)
        ]
        try:
            for worker in workers:
                worker.start()
            client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
            batch = await client.start_workflow(
                DocumentBatch.run, BatchInput(folder=str(corpus), max_in_flight=2, chunk_size=500),
                id=f"chaos-batch-{uuid.uuid4()}", task_queue=task_queue,
            )
            handles: dict[str, WorkflowHandle] = {}
            cancel_later: list[WorkflowHandle] = []
            for _ in range(sagas):
                failure = None
                if rng.random() < 0.4:
                    failure = {"step": rng.choice(ORDER_STEPS), "mode": rng.choice(["transient", "permanent"])}
                order = make_order(inject_failure=failure, step_delay_seconds=rng.choice([0, 0, 0.2, 0.5]))
                handle = await start_order(client, task_queue, order)
                handles[order.order_id] = handle
                if rng.random() < 0.1:
                    cancel_later.append(handle)

            restart_at = kills // 2
            for kill in range(kills):
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                if cancel_later:
                    await _cancel(cancel_later.pop())
                victim = rng.choice(workers)
                victim.kill()
                report.kills += 1
                if kill == restart_at:
                    server.stop()
                    await asyncio.sleep(1.0)
                    await server.start()
                    report.server_restarts += 1
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                victim.start()
            for handle in cancel_later:
                await _cancel(handle)

            deadline = time.monotonic() + bound_seconds
            for order_id, handle in handles.items():
                report.outcomes[order_id] = await _final_status(client, handle, deadline)
            batch_status = await _final_status(client, batch, deadline)
            if batch_status == "COMPLETED":
                report.batch = await client.get_workflow_handle(batch.id, result_type=BatchResult).result()
                for outcome in report.batch.documents:
                    if outcome.status == "COMPLETED":
                        child = client.get_workflow_handle(outcome.workflow_id, result_type=DocumentResult)
                        result = await child.result()
                        chunked = (await child.query(DocumentPipeline.status)).total
                        report.documents.append((result, None if result.reused else chunked))
        finally:
            for worker in workers:
                worker.stop()
            server.stop()

        stuck = [o for o, s in report.outcomes.items() if s not in FINAL]
        report.violations += [f"order {o} did not finish within {bound_seconds:.0f} s" for o in stuck]
        db = Database(database_url)
        try:
            report.violations += invariant_violations(db, report.outcomes)
            report.violations += document_violations(db, report, documents)
        finally:
            db.dispose()
    report.seconds = time.monotonic() - started_at
    return report


def document_violations(db: Database, report: ChaosReport, documents: int) -> list[str]:
    batch = report.batch
    if batch is None:
        return ["the document batch did not complete"]
    problems = []
    if batch.total != documents or batch.completed + batch.failed + batch.rejected != documents:
        problems.append(f"batch finished {batch.completed}+{batch.failed}+{batch.rejected} of {documents}")
    if len(report.documents) != batch.completed:
        problems.append(f"{len(report.documents)} document results for {batch.completed} completed documents")
    with db.transaction() as session:
        for row in session.scalars(select(DocumentRow)):
            if row.status not in ("COMPLETED", "FAILED", "REJECTED"):
                problems.append(f"document {row.path} ended {row.status}")
        for result, chunked in report.documents:
            # The chunks the run's chunk step reported, each index once: a lost, extra or
            # duplicated chunk row shows as a count or an index off.
            indexes = sorted(
                session.scalars(
                    select(ChunkRow.chunk_index).where(
                        ChunkRow.document_id == result.document_id, ChunkRow.content_hash == (result.version or result.content_hash)
                    )
                )
            )
            expected = len(indexes) if chunked is None else chunked
            if not indexes or indexes != list(range(expected)):
                problems.append(
                    f"document {result.path}: chunk indexes {indexes[:5]}... ({len(indexes)} rows), "
                    f"its run chunked it into {chunked}"
                )
            concepts = session.scalar(
                select(func.count()).select_from(ConceptRow).where(ConceptRow.document_id == result.document_id)
            )
            if concepts != result.concept_count:
                problems.append(f"document {result.path}: {concepts} concept rows, its result says {result.concept_count}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sagas", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    report = asyncio.run(run_chaos(args.sagas, args.kills, args.documents, args.seed))
    counts: dict[str, int] = {}
    for status in report.outcomes.values():
        counts[status] = counts.get(status, 0) + 1
    print(f"{len(report.outcomes)} sagas in {report.seconds:.0f} s: {counts}")
    print(f"workers SIGKILLed {report.kills} times, server restarted {report.server_restarts} time(s)")
    if report.batch:
        print(f"document batch: {report.batch.completed} completed, {report.batch.failed} failed, "
              f"{report.batch.rejected} rejected of {report.batch.total}")
    for violation in report.violations:
        print(f"VIOLATION: {violation}")
    print("invariants hold" if report.ok else f"{len(report.violations)} violation(s)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
