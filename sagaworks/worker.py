"""The sagaworks worker: serves every workflow and activity of the catalog.

    saga worker                 # against the Temporal that envconfig points at
    python -m sagaworks.worker --dev  # start the embedded dev server first (UI on :8233)

SIGINT or SIGTERM stop polling, let in-flight activities finish (up to
``--drain-seconds``) and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing.managers import SyncManager
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import SharedStateManager, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from sagaworks.activities import CPU_BOUND, build_activities, build_llm_activities
from sagaworks.activities.db import Database
from sagaworks.activities.processes import die_with_parent
from sagaworks.activities.documents import DocumentSettings
from sagaworks.activities.llm import LLMProvider
from sagaworks.activities.plans.activities import PlanSettings
from sagaworks.activities.query.activities import QuerySettings
from sagaworks.client.codec import EncryptionConfigError
from sagaworks.activities.mcp_servers import mcp_plugins
from sagaworks.client.connection import DEFAULT_ADDRESS, TASK_QUEUE, connect
from sagaworks.client.devserver import dev_server_command, wait_until_serving
from sagaworks.client.observability import configure_logging
from sagaworks.workflows.catalog import WORKFLOWS
from sagaworks.workflows.cpu import cpu_queue
from sagaworks.policies import DEFAULT_LLM_RATE_PER_SECOND, LLM_RATE_ENV, llm_task_queue

log = logging.getLogger("sagaworks.worker")

WORKFLOW_RUNNER_ENV = "SAGAWORKS_WORKFLOW_RUNNER"
WORKFLOW_RUNNERS = ("unsandboxed", "passthrough", "sandboxed")
"""How the worker runs workflow code, fastest first (``SAGAWORKS_WORKFLOW_RUNNER``).

- ``unsandboxed`` (production default): workflow code runs as plain Python, no per-run
  module setup and no runtime checks;
- ``passthrough``: the SDK's sandbox, with our own modules, pydantic and SQLAlchemy
  imported once and shared by every run instead of re-imported per run;
- ``sandboxed``: the SDK's sandbox as it comes; what the tests, CI and ``saga replay`` run.

Every determinism guarantee of the sandbox is enforced before code reaches a production
worker: the test suite runs every worker sandboxed (tests/conftest.py sets this variable),
replays tests/histories/ sandboxed, and checks workflows/ statically
(tests/test_determinism.py). See the README's Benchmarks for what each runner costs.
"""

PASSTHROUGH_MODULES = ("sagaworks", "pydantic", "sqlalchemy")
"""Imported once for every workflow run under ``passthrough`` (they hold no state a workflow
changes; workflows import them inside ``workflow.unsafe.imports_passed_through()`` anyway)."""


def workflow_runner(name: str | None = None) -> WorkflowRunner:
    """The runner called ``name``, or that ``SAGAWORKS_WORKFLOW_RUNNER`` names (default: unsandboxed)."""
    name = name or os.environ.get(WORKFLOW_RUNNER_ENV) or WORKFLOW_RUNNERS[0]
    if name == "unsandboxed":
        return UnsandboxedWorkflowRunner()
    if name == "passthrough":
        return SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        )
    if name == "sandboxed":
        return SandboxedWorkflowRunner()
    raise ValueError(f"{WORKFLOW_RUNNER_ENV}={name!r}: expected one of {', '.join(WORKFLOW_RUNNERS)}")


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    db: Database,
    *,
    task_queue: str = TASK_QUEUE,
    activity_threads: int = 16,
    drain: timedelta = timedelta(seconds=30),
    llm: LLMProvider | None = None,
    documents: DocumentSettings | None = None,
    cpu_processes: int = 2,
    query: QuerySettings | None = None,
    llm_rate_per_second: float | None = None,
    plans: PlanSettings | None = None,
    runner: str | None = None,
    extra_workflows: Sequence[type] = (),
    extra_activities: Sequence[Callable[..., Any]] = (),
) -> AsyncIterator[Worker]:
    """Serve the whole catalog until the block exits, then drain in-flight activities.

    ``llm`` and ``documents`` default to what the environment configures.

    Activities are synchronous database code, so they run in a pool of threads; the
    worker accepts ``activity_threads`` activities and as many local activities, and the
    pool has a thread for each, or accepted ones would wait inside the worker while
    their timeouts run. The CPU-bound
    activities run in ``cpu_processes`` processes of their own (see workflows/cpu.py), so
    they hold neither the event loop's GIL nor each other's, and so do the CPU-bound parts
    of the document activities (parsing, splitting, YAKE); 0 runs them in the threads.

    A third worker serves LLM calls on their own task queue (``<task_queue>-llm``) at
    most ``llm_rate_per_second`` (default ``SAGAWORKS_LLM_RATE_PER_SECOND`` or 5) across
    every worker polling it.

    ``runner`` names the workflow runner (:data:`WORKFLOW_RUNNERS`; default
    ``SAGAWORKS_WORKFLOW_RUNNER`` or unsandboxed). ``extra_workflows`` and
    ``extra_activities`` are served beside the catalog's (the benchmarks' own workloads).
    """
    rate = llm_rate_per_second or float(os.environ.get(LLM_RATE_ENV, DEFAULT_LLM_RATE_PER_SECOND))
    llm_slots = max(1, activity_threads // 4)
    with contextlib.ExitStack() as stack:
        # A thread for every activity the workers may accept: remote, local and LLM ones.
        executor = stack.enter_context(ThreadPoolExecutor(max_workers=2 * activity_threads + llm_slots))
        # Without processes: two threads of this process of their own (sharing its GIL).
        cpu_options: dict = {"max_concurrent_activities": 2}
        cpu_pool: ProcessPoolExecutor | None = None
        if cpu_processes <= 0:
            cpu_options["activity_executor"] = stack.enter_context(ThreadPoolExecutor(max_workers=2))
        else:
            # Spawned, not forked: the SDK's runtime threads must not be copied into a child.
            spawn = multiprocessing.get_context("spawn")
            manager = SyncManager(ctx=spawn)
            manager.start(die_with_parent)
            stack.enter_context(manager)
            cpu_pool = stack.enter_context(
                ProcessPoolExecutor(max_workers=cpu_processes, mp_context=spawn, initializer=die_with_parent)
            )
            cpu_options = {
                "activity_executor": cpu_pool,
                "shared_state_manager": SharedStateManager.create_from_multiprocessing(manager),
                "max_concurrent_activities": cpu_processes,
            }
        cpu_worker = Worker(
            client,
            task_queue=cpu_queue(task_queue),
            activities=CPU_BOUND,
            graceful_shutdown_timeout=drain,
            **cpu_options,
        )
        llm_worker = Worker(
            client,
            task_queue=llm_task_queue(task_queue),
            activities=build_llm_activities(db, query, plans=plans),
            activity_executor=executor,
            max_concurrent_activities=llm_slots,
            max_task_queue_activities_per_second=rate,
            graceful_shutdown_timeout=drain,
        )
        async with cpu_worker, llm_worker, Worker(
            client,
            task_queue=task_queue,
            workflows=[*WORKFLOWS, *extra_workflows],
            workflow_runner=workflow_runner(runner),
            # The document activities parse, split and run YAKE in the same process pool.
            activities=[*build_activities(db, llm, documents, query, plans, cpu_pool), *extra_activities],
            activity_executor=executor,
            max_concurrent_activities=activity_threads,
            # Local activities (the order steps) share the same threads.
            max_concurrent_local_activities=activity_threads,
            graceful_shutdown_timeout=drain,
            # MCP tool calls (SAGAWORKS_MCP_CONFIG): their sessions close with the worker.
            plugins=mcp_plugins(),
        ) as worker:
            yield worker


@contextlib.asynccontextmanager
async def embedded_server() -> AsyncIterator[str]:
    """Run the embedded dev server for the duration of the block; yield its address."""
    process = subprocess.Popen(dev_server_command(), stdin=subprocess.DEVNULL)
    try:
        await wait_until_serving(DEFAULT_ADDRESS)
        log.info("Embedded Temporal at %s, UI at http://localhost:8233", DEFAULT_ADDRESS)
        yield DEFAULT_ADDRESS
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait)


async def connect_when_ready(
    stop: asyncio.Event, *, address: str | None, namespace: str | None, give_up_after: float
) -> Client | None:
    """Connect to Temporal, retrying with capped exponential backoff while it is down.

    A worker under a supervisor (systemd, compose, Kubernetes) often starts before the
    server, or while it restarts. Returns None when ``stop`` is set first; raises the last
    connection error after ``give_up_after`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    delay = 0.5
    while True:
        try:
            return await connect(address=address, namespace=namespace)
        except RuntimeError as unreachable:  # the SDK's "Failed client connect"
            if loop.time() + delay > deadline:
                raise
            log.warning("Temporal not reachable (%s); retrying in %.1f s", unreachable, delay)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return None
        delay = min(delay * 2, 10.0)


async def main(args: argparse.Namespace) -> None:
    """Run until SIGINT/SIGTERM, then drain and return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with contextlib.AsyncExitStack() as stack:
        address = args.address
        if args.dev:
            address = await stack.enter_async_context(embedded_server())
        client = await connect_when_ready(
            stop, address=address, namespace=args.namespace, give_up_after=args.connect_seconds
        )
        if client is None:
            log.info("Stopped before Temporal was reachable")
            return
        db = Database()
        stack.callback(db.dispose)
        log.info(
            "Worker polling %s on %s (database %s); documents are read from %s only",
            args.task_queue,
            client.service_client.config.target_host,
            db.engine.url.render_as_string(hide_password=True),
            DocumentSettings().describe_roots(),
        )
        async with running_worker(
            client,
            db,
            task_queue=args.task_queue,
            activity_threads=args.activity_threads,
            drain=timedelta(seconds=args.drain_seconds),
            cpu_processes=args.cpu_processes,
            runner=args.workflow_runner,
        ):
            await stop.wait()
            log.info("Stopping: draining in-flight activities")
    log.info("Worker stopped")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the sagaworks worker (every workflow and activity of the catalog).",
        epilog="Connection settings come from Temporal's envconfig (TEMPORAL_ADDRESS, "
        "TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_PROFILE, TLS); the database from "
        "DATABASE_URL (default: SQLite under .sagaworks/).",
    )
    parser.add_argument("--dev", action="store_true", help="start the embedded Temporal dev server first")
    parser.add_argument("--address", help="Temporal frontend host:port (overrides envconfig)")
    parser.add_argument("--namespace", help="Temporal namespace (overrides envconfig)")
    parser.add_argument("--task-queue", default=TASK_QUEUE, help="task queue to poll (default %(default)s)")
    parser.add_argument(
        "--activity-threads", type=int, default=16, help="concurrent activities (default %(default)s)"
    )
    parser.add_argument(
        "--cpu-processes",
        type=int,
        default=2,
        help="processes for CPU-bound activities; 0 runs them in the threads (default %(default)s)",
    )
    parser.add_argument(
        "--workflow-runner",
        choices=WORKFLOW_RUNNERS,
        help=f"how workflow code runs (default ${WORKFLOW_RUNNER_ENV} or {WORKFLOW_RUNNERS[0]}; "
        "the tests run sandboxed)",
    )
    parser.add_argument(
        "--connect-seconds",
        type=float,
        default=300,
        help="how long to keep retrying while Temporal is unreachable at start (default %(default)s)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=30,
        help="how long in-flight activities may finish on shutdown (default %(default)s)",
    )
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and serve until SIGINT/SIGTERM (``python -m sagaworks.worker``)."""
    configure_logging()
    try:
        asyncio.run(main(parse_args(argv)))
    except EncryptionConfigError as unusable:
        # A configuration error: say it in one line and exit, no traceback, no retrying.
        log.error("Unusable encryption settings: %s", unusable)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
