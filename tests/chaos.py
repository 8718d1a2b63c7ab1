"""Chaos run: every registered family's runs while workers die and the server restarts.

    python -m tests.chaos [--sagas 200] [--kills 20] [--server-restarts 3] [--copies 2]   # `make chaos`

Starts the embedded server on a SQLite history file (it survives restarts) and two workers
(real ``python -m sagaworks.worker`` processes), then runs the mix a deployment sees:

- order sagas with random transient and permanent failures and random cancellations, and a
  document batch (the load);
- for every family of the registry (``sagaworks.registry()``, nothing listed by hand), its
  demo samples (``DemoRun``: completing and failing runs, routing's approval and a support
  ticket's assign and resolve Updates sent while its steps run), ``--copies`` times each,
  plus one run of each sample cancelled right after its start; a family without demo runs
  runs each of its samples, expected to complete; each family starts after the families its
  ``demo_after`` names have finished (searches need the stored documents);
- a schedule of the news digest (the client schedules API, as ``saga schedule create``),
  triggered at the start and once the kills are over.

Meanwhile it SIGKILLs a random worker ``--kills`` times (restarting it each time), restarts
the Temporal server ``--server-restarts`` times and, when the application database is
PostgreSQL (``SAGAWORKS_TEST_POSTGRES_URL``: a fresh database of that server is used), that
database once. A family whose external services are unavailable here (an MCP server not
installed) is skipped, with the reason printed.

Then it checks: every run reached its expected final state within the bound (a completed
run's result holds what its ``DemoRun`` says it must, a running ticket reached the step the
demo shows); every history the run produced replays in the sandboxed replayer (a run
waiting on a long timer shows no failed task: only a replay finds that it cannot go on);
and the database invariants of the families that have them:

- order: stock is conserved; every charge of a failed or cancelled order is refunded
  exactly once and no order is charged twice (the payment ledger);
- document / document-batch: every completed document has exactly the chunk rows its run
  reported, indexed 0..n-1, and the concept rows its result counts;
- news-digest: no article is published by two digests, every published article is marked
  seen by the digest that published it, every stored digest has its row;
- routing: each completed request has one stored row whose outcome and approver are the
  run's.

The other families are checked by their final state, result content and replay only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from temporalio.client import Client, ScheduleHandle, WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError

from bench.corpus import write_corpus
from sagaworks import DemoRun, Family, registry
from sagaworks.activities.db import Database
from sagaworks.activities.document import DEFAULT_ROOT, ChunkRow, ConceptRow, DocumentRow
from sagaworks.activities.news import DigestRow, SeenArticleRow
from sagaworks.activities.orders import invariant_violations
from sagaworks.activities.routing import RoutedRequestRow
from sagaworks.client.connection import DATA_CONVERTER
from sagaworks.client.demo import progress_at, send_demo_update
from sagaworks.client.devserver import dev_server_command, wait_until_serving
from sagaworks.client.replay import replay
from sagaworks.client.runs import RunConflict, start_run, to_jsonable
from sagaworks.client.schedules import create_schedule
from sagaworks.contracts.document import BatchInput, BatchResult, DocumentResult
from sagaworks.contracts.orders import ORDER_STEPS
from sagaworks.workflows.document import DocumentPipeline
from sagaworks.workflows.document_batch import DocumentBatch
from tests.orders import make_order, start_order
from tests.ports import free_port
from tests.postgres import POSTGRES_URL_ENV, fresh_postgres_database
from tests.workers import WorkerProcess

SCHEDULED = "news-digest"
"""The family the chaos run also starts through a schedule (its runs are meant to be)."""

FINAL = {"COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"}


@dataclass
class FamilyRun:
    """One run the chaos run started of a registered family, and how it ended."""

    family: str
    sample: str
    workflow_id: str
    expect: str
    """COMPLETED, FAILED, CANCELED, or RUNNING (a long-lived run, at its demo's step)."""
    how: str = "demo"
    """demo, cancelled or scheduled."""
    status: str = ""
    result: Any = None
    """The JSON result of a completed run."""
    arg: BaseModel | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == self.expect and not self.problems


@dataclass
class ChaosReport:
    outcomes: dict[str, str] = field(default_factory=dict)
    """Order id -> final status of the order sagas of the load."""
    violations: list[str] = field(default_factory=list)
    kills: int = 0
    server_restarts: int = 0
    database_restarts: int = 0
    seconds: float = 0.0
    batch: BatchResult | None = None
    documents: list[tuple[DocumentResult, int | None]] = field(default_factory=list)
    """The result of each completed document of the batch and the chunk count its chunk
    step reported (its ``status`` query's total; None when it reused a stored result)."""
    runs: list[FamilyRun] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Family -> why it was not run here."""
    replayed: int = 0
    invariants: list[str] = field(default_factory=list)
    """The families whose database invariants were checked."""

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


def unavailable_service(fam: Family[Any]) -> str | None:
    """Why ``fam`` cannot run on this machine although its modules are installed (an
    external service it calls is missing), or None."""
    if "mcp" in fam.requires:
        from sagaworks.activities.mcp_servers import load_config

        for name, server in load_config().servers.items():
            reason = server.unavailable_reason()
            if reason is None:
                absent = [arg for arg in server.args if arg.endswith(".js") and not Path(arg).exists()]
                reason = f"{absent[0]} not found (run `make mcp-servers`)" if absent else None
            if reason:
                return f"MCP server {name}: {reason}"
    return None


def chaos_demos(fam: Family[Any]) -> list[DemoRun]:
    """What the chaos run starts of ``fam``: its demo runs that end (a long-lived run too,
    checked at the step its demo shows), or each of its samples when it has none."""
    return list(fam.demo) or [DemoRun(sample) for sample in fam.samples]


async def _retrying(call: Any, deadline: float) -> Any:
    """``await call()``, again after a lost connection (the server restarting) until ``deadline``."""
    while True:
        try:
            return await call()
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _cancel(handle: WorkflowHandle) -> None:
    try:
        await handle.cancel()
    except RPCError:
        pass  # already finished: nothing to cancel


async def _final_status(client: Client, handle: WorkflowHandle, deadline: float) -> str:
    """The final status of the run ``handle`` started (followed through continue-as-new).

    The run is pinned by its id: a handle by workflow id alone describes the newest run of that
    id, which for a family whose id derives from its input (a document path) may be a later
    copy, cancelled on purpose. Polls describe() so a server restart only costs a retry."""
    run_id = handle.run_id or handle.first_execution_run_id
    while time.monotonic() < deadline:
        try:
            run = client.get_workflow_handle(handle.id, run_id=run_id)
            status = (await run.describe()).status
            if status is not None and status.name == "CONTINUED_AS_NEW":
                run_id = await _next_run_id(run)
                continue
            if status is not None and status.name in FINAL:
                return status.name
        except RPCError:
            pass
        await asyncio.sleep(0.5)
    return "STILL RUNNING"


async def _next_run_id(run: WorkflowHandle) -> str:
    """The run that ``run`` continued as (the last event of its history names it)."""
    last = None
    async for event in run.fetch_history_events():
        last = event
    assert last is not None and last.HasField("workflow_execution_continued_as_new_event_attributes")
    return last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id


async def _start_family_run(
    client: Client, task_queue: str, fam: Family[Any], arg: BaseModel, deadline: float
) -> WorkflowHandle:
    """Start a run; a run of the same id still open (a digest of one name) is waited for."""
    while True:
        try:
            return await start_run(client, fam, arg, task_queue=task_queue)
        except RunConflict:
            await _final_status(client, client.get_workflow_handle(fam.workflow_id(arg)), deadline)
        except RPCError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not start {fam.name} {fam.workflow_id(arg)}")
        await asyncio.sleep(0.5)


async def _finish(client: Client, handle: WorkflowHandle, run: FamilyRun, demo: DemoRun, deadline: float) -> FamilyRun:
    """Wait for ``run``'s end (or, for a long-lived one, its demo's step) and record it."""
    if run.expect == "RUNNING":
        # A status query fails while no worker is up (killed, or the server restarting).
        step = ""
        while demo.shown_at not in step and time.monotonic() < deadline:
            progress = await progress_at(handle, demo.shown_at, patience=max(deadline - time.monotonic(), 1))
            step = getattr(progress, "current_step", None) or str(progress)
            if isinstance(progress, str):
                await asyncio.sleep(0.5)
        run.status = "RUNNING" if demo.shown_at in step else f"at {step!r}"
        if run.status != "RUNNING":
            run.problems.append(f"did not reach {demo.shown_at!r}")
        return run
    run.status = await _final_status(client, handle, deadline)
    if run.status == "COMPLETED":
        result = await _retrying(client.get_workflow_handle(handle.id, run_id=handle.result_run_id).result, deadline)
        run.result = to_jsonable(result)
        if missing := demo.missing_from(run.result):
            run.problems.append(f"completed without {demo.result_means or 'its result'}: {', '.join(missing)} missing")
    return run


async def _family_runs(
    client: Client, task_queue: str, fam: Family[Any], copies: int, deadline: float
) -> list[FamilyRun]:
    """Every chaos run of ``fam``: each demo ``copies`` times with its updates, and once
    cancelled right after its start; concurrently, as users would start them."""

    async def one(demo: DemoRun, cancel: bool) -> FamilyRun:
        arg = fam.sample_input(demo.sample, uuid.uuid4().hex[:10])
        handle = await _start_family_run(client, task_queue, fam, arg, deadline)
        run = FamilyRun(
            fam.name,
            demo.sample,
            handle.id,
            "CANCELED" if cancel else demo.expect,
            how="cancelled" if cancel else "demo",
            arg=arg,
        )
        if cancel:
            await _retrying(handle.cancel, deadline)
        for update in () if cancel else demo.updates:
            try:
                await send_demo_update(handle, update, within=max(deadline - time.monotonic(), 1))
            except Exception as error:  # noqa: BLE001 - reported as the run's problem
                cause = getattr(error, "cause", None)
                run.problems.append(f"update {update.name} failed: {type(error).__name__}: {error} ({cause!r})")
        return await _finish(client, handle, run, demo, deadline)

    jobs = [one(demo, False) for demo in chaos_demos(fam) for _ in range(copies)]
    jobs += [one(demo, True) for demo in chaos_demos(fam)]
    return list(await asyncio.gather(*jobs))


async def _scheduled_runs(
    client: Client, schedule: ScheduleHandle, fam: Family[Any], deadline: float
) -> list[FamilyRun]:
    """The runs ``schedule`` started, once each ended; it is paused first."""
    await _retrying(lambda: schedule.pause(note="chaos run over"), deadline)
    demo = chaos_demos(fam)[0]
    runs = []
    async for execution in client.list_workflows(f"TemporalScheduledById = '{schedule.id}'"):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        run = FamilyRun(fam.name, demo.sample, execution.id, "COMPLETED", how="scheduled")
        runs.append(await _finish(client, handle, run, demo, deadline))
    await _retrying(schedule.delete, deadline)
    return runs


def restart_postgres(url: str) -> None:
    """Restart the PostgreSQL cluster serving ``url`` (a Debian cluster, as .ci/postgres.sh starts)."""
    port = str(make_url(url).port or 5432)
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            subprocess.run(["pg_ctlcluster", version, name, "restart"], check=True, capture_output=True)
            return
    raise RuntimeError(f"no local PostgreSQL cluster on port {port} to restart (pg_lsclusters)")


@contextmanager
def application_database(folder: Path) -> Iterator[str]:
    """A fresh application database: on PostgreSQL when ``SAGAWORKS_TEST_POSTGRES_URL`` is
    set (a new database of that server, dropped after), else a SQLite file."""
    base = os.environ.get(POSTGRES_URL_ENV)
    if not base:
        yield f"sqlite:///{folder / 'app.db'}"
        return
    yield from fresh_postgres_database(base, prefix="sagaworks_chaos")


async def _histories(client: Client, task_queue: str, deadline: float) -> list[WorkflowHistory]:
    """The history of every run on ``task_queue`` (children and each run of a chain that
    continued as new included)."""
    histories = []
    async for execution in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        histories.append(await _retrying(handle.fetch_history, deadline))
    return histories


async def replay_violations(histories: list[WorkflowHistory], workflows: list[type] | None = None) -> list[str]:
    """A line per history the sandboxed replayer cannot replay with ``workflows`` (default:
    every registered family's)."""
    replayed = await replay(histories, workflows)
    workflow_ids = {history.run_id: history.workflow_id for history in histories}
    return [
        f"replay of {workflow_ids.get(run_id, '?')} (run {run_id}) failed: {type(error).__name__}: {error}"
        for run_id, error in sorted(replayed.replay_failures.items())
    ]


async def run_chaos(
    sagas: int,
    kills: int,
    documents: int,
    seed: int = 7,
    bound_seconds: float = 600,
    *,
    server_restarts: int = 1,
    copies: int = 1,
    families: bool = True,
) -> ChaosReport:
    """Run the chaos scenario in a temporary folder and return what it found.

    ``families=False`` runs the order and document load only."""
    rng = random.Random(seed)
    report = ChaosReport()
    started_at = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, application_database(Path(tmp)) as database_url:
        folder = Path(tmp)
        corpus = folder / "corpus"
        write_corpus(corpus, count=documents, megabytes=documents * 0.02)
        server = Server(folder)
        await server.start()
        task_queue = f"chaos-{uuid.uuid4()}"
        # The demo samples' relative paths are under samples/documents (the first root).
        roots = os.pathsep.join([str(DEFAULT_ROOT), str(corpus)])
        workers = [
            WorkerProcess(
                server.address,
                task_queue,
                database_url,
                folder / f"worker-{i}.log",
                SAGAWORKS_DOCUMENT_ROOTS=roots,
                SAGAWORKS_LLM_PROVIDER="offline",
            )
            for i in range(2)
        ]
        found = registry()
        for missing in found.unavailable:
            report.skipped[missing.name] = f"{missing.missing} not installed ({missing.install})"
        ordered = [fam for fam in found.demo_order() if fam.name not in report.skipped]
        ordered += [fam for fam in found if not fam.demo and chaos_demos(fam)]
        for fam in list(ordered):
            if reason := unavailable_service(fam):
                report.skipped[fam.name] = reason
                ordered.remove(fam)
        histories: list[WorkflowHistory] = []
        try:
            for worker in workers:
                worker.start()
            client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
            deadline = time.monotonic() + bound_seconds
            batch = await client.start_workflow(
                DocumentBatch.run,
                BatchInput(folder=str(corpus), max_in_flight=2, chunk_size=500),
                id=f"chaos-batch-{uuid.uuid4()}",
                task_queue=task_queue,
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

            tasks: dict[str, asyncio.Task[list[FamilyRun]]] = {}

            async def family(fam: Family[Any]) -> list[FamilyRun]:
                # After the families it needs (a search needs the stored documents).
                await asyncio.gather(*(tasks[name] for name in fam.demo_after if name in tasks), return_exceptions=True)
                return await _family_runs(client, task_queue, fam, copies, deadline)

            for fam in ordered if families else []:
                tasks[fam.name] = asyncio.create_task(family(fam))
            schedule = None
            if families and SCHEDULED in {fam.name for fam in ordered}:
                digest = found.family(SCHEDULED)
                arg = digest.sample_input(chaos_demos(digest)[0].sample)
                schedule = await create_schedule(
                    client,
                    digest,
                    arg,
                    cron="* * * * *",
                    schedule_id=f"chaos-{uuid.uuid4().hex[:8]}",
                    task_queue=task_queue,
                )
                await schedule.trigger()

            server_restart_at = {(i + 1) * kills // (server_restarts + 1) for i in range(server_restarts)}
            database_restart_at = kills // 3 if database_url.startswith("postgresql") else None
            for kill in range(kills):
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                if cancel_later:
                    await _cancel(cancel_later.pop())
                victim = rng.choice(workers)
                victim.kill()
                report.kills += 1
                if kill in server_restart_at:
                    server.stop()
                    await asyncio.sleep(1.0)
                    await server.start()
                    report.server_restarts += 1
                if kill == database_restart_at:
                    await asyncio.to_thread(restart_postgres, database_url)
                    report.database_restarts += 1
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                victim.start()
            for handle in cancel_later:
                await _cancel(handle)
            if schedule is not None:
                await _retrying(schedule.trigger, deadline)

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
            for name, task in tasks.items():
                try:
                    report.runs += await task
                except Exception as error:  # noqa: BLE001 - a family that could not run is a violation
                    report.violations.append(f"{name}: its runs could not be driven: {type(error).__name__}: {error}")
            if schedule is not None:
                scheduled = await _scheduled_runs(client, schedule, found.family(SCHEDULED), deadline)
                report.runs += scheduled
                if not scheduled:
                    report.violations.append(f"the {SCHEDULED} schedule started no run")
            histories = await _histories(client, task_queue, deadline)
            for run in report.runs:  # the long-lived runs (open tickets): recorded, now ended
                if run.status == "RUNNING":
                    await _retrying(
                        lambda run=run: client.get_workflow_handle(run.workflow_id).terminate("chaos run over"),
                        deadline,
                    )
        finally:
            for worker in workers:
                worker.stop()
            server.stop()

        stuck = [o for o, s in report.outcomes.items() if s not in FINAL]
        report.violations += [f"order {o} did not finish within {bound_seconds:.0f} s" for o in stuck]
        for run in report.runs:
            if not run.ok:
                problems = "; ".join(run.problems)
                report.violations.append(
                    f"{run.family} {run.workflow_id} ({run.how}, {run.sample}): {run.status}, expected {run.expect}"
                    + (f"; {problems}" if problems else "")
                )
        report.replayed = len(histories)
        report.violations += await replay_violations(histories)

        db = Database(database_url)
        try:
            orders = dict(report.outcomes)
            orders.update(
                (run.arg.order_id, run.status)  # type: ignore[attr-defined]  # an order run's input is an OrderInput
                for run in report.runs
                if run.family == "order" and run.arg
            )
            report.violations += invariant_violations(db, orders)
            report.violations += document_violations(db, report, documents)
            report.violations += news_violations(db, [run for run in report.runs if run.family == "news-digest"])
            report.violations += routing_violations(db, [run for run in report.runs if run.family == "routing"])
            report.invariants = ["order", "document-batch (and its documents)", "news-digest", "routing"]
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
            # CANCELED: the last run of that document was cancelled.
            if row.status not in ("COMPLETED", "FAILED", "REJECTED", "CANCELED"):
                problems.append(f"document {row.path} ended {row.status}")
        for result, chunked in report.documents:
            # The chunks the run's chunk step reported, each index once: a lost, extra or
            # duplicated chunk row shows as a count or an index off.
            indexes = sorted(
                session.scalars(
                    select(ChunkRow.chunk_index).where(
                        ChunkRow.document_id == result.document_id,
                        ChunkRow.content_hash == (result.version or result.content_hash),
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
                problems.append(
                    f"document {result.path}: {concepts} concept rows, its result says {result.concept_count}"
                )
    return problems


def news_violations(db: Database, runs: list[FamilyRun]) -> list[str]:
    """No article published by two digests; each published article marked seen by the
    digest that published it; each stored digest has its row."""
    problems = []
    published: dict[str, str] = {}
    with db.transaction() as session:
        seen = dict(session.execute(select(SeenArticleRow.article_key, SeenArticleRow.digest_key)).all())
        stored = set(session.scalars(select(DigestRow.digest_key)))
        for run in runs:
            result = run.result
            if run.status != "COMPLETED" or not result or not result.get("stored"):
                continue
            key = result["digest_key"]
            if key not in stored:
                problems.append(f"digest {run.workflow_id} says it stored {key}, which has no row")
            for article in result["articles"]:
                if article["key"] in published:
                    problems.append(
                        f"article {article['key']} published twice: by "
                        f"{published[article['key']]} and {run.workflow_id}"
                    )
                published[article["key"]] = run.workflow_id
                if seen.get(article["key"]) != key:
                    problems.append(
                        f"article {article['key']} of digest {key} is marked seen by {seen.get(article['key'])}"
                    )
    return problems


def routing_violations(db: Database, runs: list[FamilyRun]) -> list[str]:
    """Each completed request has its stored row, with the run's outcome and approver."""
    problems = []
    with db.transaction() as session:
        for run in runs:
            if run.status != "COMPLETED" or not run.result:
                continue
            result = run.result
            row = session.get(RoutedRequestRow, result["request_id"])
            outcome = "handled" if result.get("handled") else "rejected"
            if row is None:
                problems.append(f"request {result['request_id']} completed but has no stored row")
            elif (row.outcome, row.decided_by) != (outcome, result.get("decided_by")):
                problems.append(
                    f"request {result['request_id']}: stored {row.outcome} by {row.decided_by}, "
                    f"the run says {outcome} by {result.get('decided_by')}"
                )
    return problems


def summary(report: ChaosReport) -> list[str]:
    """What the chaos run did and found, a line each."""
    counts: dict[str, int] = {}
    for status in report.outcomes.values():
        counts[status] = counts.get(status, 0) + 1
    lines = [f"{len(report.outcomes)} sagas in {report.seconds:.0f} s: {counts}"]
    if report.batch:
        lines.append(
            f"document batch: {report.batch.completed} completed, {report.batch.failed} failed, "
            f"{report.batch.rejected} rejected of {report.batch.total}"
        )
    by_family: dict[str, dict[str, int]] = {}
    for run in report.runs:
        key = f"{run.status}" + ("" if run.how == "demo" else f" ({run.how})")
        by_family.setdefault(run.family, {})
        by_family[run.family][key] = by_family[run.family].get(key, 0) + 1
    for name, family_counts in by_family.items():
        lines.append(f"{name}: {family_counts}")
    lines += [f"{name}: SKIPPED, {reason}" for name, reason in report.skipped.items()]
    lines.append(
        f"workers SIGKILLed {report.kills} times, server restarted {report.server_restarts} time(s), "
        f"database restarted {report.database_restarts} time(s)"
    )
    lines.append(f"{report.replayed} histories replayed; database invariants checked: {', '.join(report.invariants)}")
    lines += [f"VIOLATION: {violation}" for violation in report.violations]
    lines.append("invariants hold" if report.ok else f"{len(report.violations)} violation(s)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sagas", type=int, default=200, help="order sagas of the load")
    parser.add_argument("--kills", type=int, default=20, help="worker SIGKILLs")
    parser.add_argument("--server-restarts", type=int, default=3, help="Temporal server restarts")
    parser.add_argument("--documents", type=int, default=20, help="documents of the load's batch")
    parser.add_argument("--copies", type=int, default=2, help="runs of each family's demo sample (and one cancelled)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bound", type=float, default=900, help="seconds every run has to reach its final state")
    args = parser.parse_args()
    report = asyncio.run(
        run_chaos(
            args.sagas,
            args.kills,
            args.documents,
            args.seed,
            args.bound,
            server_restarts=args.server_restarts,
            copies=args.copies,
        )
    )
    for line in summary(report):
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
