"""The sagaworks worker: serves every workflow and activity of the registered families.

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
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity as temporal_activity
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Plugin, SharedStateManager, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from sagaworks._db import Database
from sagaworks._llm import LLMConfigError, check_llm_environment
from sagaworks._registry import Family, WorkerResources, registry, resolve
from sagaworks.activities.processes import process_pool
from sagaworks.client.codec import EncryptionConfigError
from sagaworks.client.connection import DEFAULT_ADDRESS, TASK_QUEUE, connect
from sagaworks.client.devserver import (
    SEARCH_ATTRIBUTES,
    dev_server_command,
    register_search_attributes,
    wait_until_serving,
)
from sagaworks.client.observability import configure_logging
from sagaworks.policies import DEFAULT_LLM_RATE_PER_SECOND, LLM_RATE_ENV, llm_task_queue
from sagaworks.workflows.cpu import cpu_queue

log = logging.getLogger("sagaworks.worker")

T = TypeVar("T")

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
(tests/test_determinism.py). docs/operations/benchmarks.md gives what each runner costs.
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


@dataclass
class WorkerParts:
    """What the workers of a set of families serve, each workflow and activity once."""

    workflows: list[type] = field(default_factory=list)
    activities: list[Callable[..., Any]] = field(default_factory=list)
    """The main task queue's."""
    cpu_activities: list[Callable[..., Any]] = field(default_factory=list)
    """The process pool's (the CPU task queue)."""
    llm_activities: list[Callable[..., Any]] = field(default_factory=list)
    """The rate-limited LLM task queue's."""
    plugins: list[Plugin] = field(default_factory=list)


def _activity_name(fn: Callable[..., Any]) -> str:
    definition = temporal_activity._Definition.from_callable(fn)
    return definition.name if definition and definition.name else getattr(fn, "__name__", repr(fn))


def _workflow_name(cls: type) -> str:
    return workflow._Definition.must_from_class(cls).name or cls.__name__


def _add_unique(into: list[T], items: Iterable[T], key: Callable[[T], str]) -> None:
    """Families may share an activity or a helper workflow (a batch runs the document
    pipeline): each name is served once, the first family's."""
    taken = {key(item) for item in into}
    for item in items:
        if key(item) not in taken:
            taken.add(key(item))
            into.append(item)


def _code(item: Any) -> Any:
    """What implements an activity or workflow: a bound method's function, so that two
    instances of one activity class count as the same code."""
    return getattr(item, "__func__", item)


def _name_clashes(
    owners: dict[str, tuple[str, Any]], family: str, items: Iterable[Any], key: Callable[[Any], str]
) -> list[str]:
    """The names of ``items`` that another family already serves with other code: a task
    queue knows an activity or workflow by its name alone, so one of them would silently
    run in place of the other."""
    return [
        f"{key(item)} (also {owners[key(item)][0]}'s)"
        for item in items
        if key(item) in owners and owners[key(item)][0] != family and owners[key(item)][1] is not _code(item)
    ]


def _plugins(refs: Iterable[Any]) -> list[Plugin]:
    """Each plugin or plugin factory once, however many families name it (one MCP plugin
    owns the sessions of every family that calls tools)."""
    seen: list[Any] = []
    plugins: list[Plugin] = []
    for ref in refs:
        declared = resolve(ref)
        if any(declared is other for other in seen):
            continue
        seen.append(declared)
        made = declared if isinstance(declared, Plugin) else declared()
        plugins.extend([made] if isinstance(made, Plugin) else made)
    return plugins


def worker_parts(families: Iterable[Family[Any]], resources: WorkerResources) -> WorkerParts:
    """Build what ``families`` serve from ``resources``.

    A family whose code cannot be imported, whose activities cannot be built, or one of
    whose workflow or activity names another family serves with other code, is logged by
    name and left out: the other families are still served.
    """
    parts = WorkerParts()
    plugin_refs: list[Any] = []
    owners: dict[str, tuple[str, Any]] = {}
    """Each served name -> the family that first served it and its code."""
    for fam in families:
        try:
            workflows = [fam.workflow, *fam.helper_workflows]
            activities = fam.activities(resources)
            cpu = fam.cpu_activities()
            llm = fam.llm_activities(resources)
            plugin_refs += [resolve(ref) for ref in fam.plugins]
        except Exception as broken:  # one family's fault must not stop the others being served
            log.error("Not serving the family %s: %s: %s", fam.name, type(broken).__name__, broken)
            continue
        clashes = [
            *_name_clashes(owners, fam.name, workflows, _workflow_name),
            *_name_clashes(owners, fam.name, [*activities, *cpu, *llm], _activity_name),
        ]
        if clashes:
            log.error(
                "Not serving the family %s: its names are taken by other code: %s (give its activities "
                "names of their own: @activity.defn(name=...))",
                fam.name,
                ", ".join(clashes),
            )
            continue
        for name, item in [(_workflow_name(w), w) for w in workflows] + [
            (_activity_name(a), a) for a in (*activities, *cpu, *llm)
        ]:
            owners.setdefault(name, (fam.name, _code(item)))
        _add_unique(parts.workflows, workflows, _workflow_name)
        _add_unique(parts.activities, activities, _activity_name)
        _add_unique(parts.cpu_activities, cpu, _activity_name)
        _add_unique(parts.llm_activities, llm, _activity_name)
    parts.plugins = _plugins(plugin_refs)
    return parts


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    db: Database,
    *,
    task_queue: str = TASK_QUEUE,
    activity_threads: int = 16,
    drain: timedelta = timedelta(seconds=30),
    settings: Sequence[object] = (),
    cpu_processes: int = 2,
    llm_rate_per_second: float | None = None,
    runner: str | None = None,
    families: Sequence[Family[Any]] | None = None,
    extra_workflows: Sequence[type] = (),
    extra_activities: Sequence[Callable[..., Any]] = (),
) -> AsyncIterator[Worker]:
    """Serve every registered family until the block exits, then drain in-flight activities.

    ``families`` defaults to the registry's (:func:`sagaworks.registry`). Their activities
    are built from a :class:`~sagaworks.WorkerResources` of ``db``, ``settings`` (objects a
    family looks up by type, such as a family's own settings class or the LLM gateway,
    ``sagaworks.LLM``; default: each reads the environment) and the process pool.

    Activities are synchronous database code, so they run in a pool of threads; the
    worker accepts ``activity_threads`` activities and as many local activities, and the
    pool has a thread for each, or accepted ones would wait inside the worker while
    their timeouts run. The families' CPU-bound
    activities run in ``cpu_processes`` processes of their own (see workflows/cpu.py), so
    they hold neither the event loop's GIL nor each other's, and so may the CPU-bound parts
    of threaded activities (``WorkerResources.cpu_pool``); 0 runs them in the threads.

    A third worker serves LLM calls on their own task queue (``<task_queue>-llm``) at
    most ``llm_rate_per_second`` (default ``SAGAWORKS_LLM_RATE_PER_SECOND`` or 5) across
    every worker polling it.

    ``runner`` names the workflow runner (:data:`WORKFLOW_RUNNERS`; default
    ``SAGAWORKS_WORKFLOW_RUNNER`` or unsandboxed). ``extra_workflows`` and
    ``extra_activities`` are served beside the families' (the benchmarks' own workloads).
    """
    rate = llm_rate_per_second or float(os.environ.get(LLM_RATE_ENV, DEFAULT_LLM_RATE_PER_SECOND))
    llm_slots = max(1, activity_threads // 4)
    with contextlib.ExitStack() as stack:
        # A thread for every activity the workers may accept: remote, local and LLM ones.
        executor = stack.enter_context(ThreadPoolExecutor(max_workers=2 * activity_threads + llm_slots))
        # Without processes: two threads of this process of their own (sharing its GIL).
        cpu_options: dict[str, Any] = {"max_concurrent_activities": 2}
        cpu_pool: ProcessPoolExecutor | None = None
        if cpu_processes <= 0:
            cpu_options["activity_executor"] = stack.enter_context(ThreadPoolExecutor(max_workers=2))
        else:
            manager, pool = process_pool(cpu_processes)
            stack.enter_context(manager)
            cpu_pool = stack.enter_context(pool)
            cpu_options = {
                "activity_executor": cpu_pool,
                "shared_state_manager": SharedStateManager.create_from_multiprocessing(manager),
                "max_concurrent_activities": cpu_processes,
            }
        resources = WorkerResources(db=db, cpu_pool=cpu_pool, settings=tuple(settings))
        parts = worker_parts(registry().families if families is None else families, resources)
        _add_unique(parts.workflows, extra_workflows, _workflow_name)
        _add_unique(parts.activities, extra_activities, _activity_name)
        workers = []
        # A worker with nothing to serve on a queue is not started (the SDK refuses one).
        if parts.cpu_activities:
            workers.append(
                Worker(
                    client,
                    task_queue=cpu_queue(task_queue),
                    activities=parts.cpu_activities,
                    graceful_shutdown_timeout=drain,
                    **cpu_options,
                )
            )
        if parts.llm_activities:
            workers.append(
                Worker(
                    client,
                    task_queue=llm_task_queue(task_queue),
                    activities=parts.llm_activities,
                    activity_executor=executor,
                    max_concurrent_activities=llm_slots,
                    max_task_queue_activities_per_second=rate,
                    graceful_shutdown_timeout=drain,
                )
            )
        async with contextlib.AsyncExitStack() as running:
            for side_worker in workers:
                await running.enter_async_context(side_worker)
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=parts.workflows,
                workflow_runner=workflow_runner(runner),
                activities=parts.activities,
                activity_executor=executor,
                max_concurrent_activities=activity_threads,
                # Local activities (the order steps) share the same threads.
                max_concurrent_local_activities=activity_threads,
                graceful_shutdown_timeout=drain,
                # The families' plugins (MCP tool calls: their sessions close with the worker).
                plugins=parts.plugins,
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


async def search_attributes_registered(client: Client) -> None:
    """Register the search attributes the workflows publish (an approval's state, a plan's
    alert level, a ticket's queue fields) where the server lets a client do so.

    A workflow that publishes one the server does not know fails its workflow task until
    it is registered; on a server that refuses (Temporal Cloud: the namespace's settings),
    the log says which ones to create.
    """
    from temporalio.service import RPCError

    try:
        await register_search_attributes(client)
    except RPCError as refused:
        names = ", ".join(key.name for key in SEARCH_ATTRIBUTES)
        log.warning(
            "Could not register the search attributes %s (%s): create them as Keyword attributes of the "
            "namespace (temporal operator search-attribute create --name NAME --type Keyword)",
            names,
            refused.message,
        )


async def main(args: argparse.Namespace) -> None:
    """Run until SIGINT/SIGTERM, then drain and return."""
    check_llm_environment()  # before waiting for Temporal: a typo is reported at once
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
        await search_attributes_registered(client)
        db = Database()
        stack.callback(db.dispose)
        families = registry()
        log.info(
            "Worker polling %s on %s (database %s) for the families %s",
            args.task_queue,
            client.service_client.config.target_host,
            db.engine.url.render_as_string(hide_password=True),
            ", ".join(families.names),
        )
        for broken in families.broken:
            log.error("Skipped the family entry point %s: %s", broken.entry, broken.error)
        for missing in families.unavailable:
            log.warning(
                "Not serving the family %s: %s is not installed (%s)", missing.name, missing.missing, missing.install
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


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the sagaworks worker (every workflow and activity of the registered families).",
        epilog="Connection settings come from Temporal's envconfig (TEMPORAL_ADDRESS, "
        "TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_PROFILE, TLS); the database from "
        "DATABASE_URL (default: SQLite under .sagaworks/); the LLM gateway's models and budget "
        "from SAGAWORKS_LLM_* (provider, base URL, model, key, per family too; RPM and TPM) and "
        "GROQ_API_KEY.",
    )
    parser.add_argument("--dev", action="store_true", help="start the embedded Temporal dev server first")
    parser.add_argument("--address", help="Temporal frontend host:port (overrides envconfig)")
    parser.add_argument("--namespace", help="Temporal namespace (overrides envconfig)")
    parser.add_argument("--task-queue", default=TASK_QUEUE, help="task queue to poll (default %(default)s)")
    parser.add_argument("--activity-threads", type=int, default=16, help="concurrent activities (default %(default)s)")
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


def run(argv: list[str] | None = None, prog: str | None = None) -> None:
    """Parse ``argv`` and serve until SIGINT/SIGTERM (``python -m sagaworks.worker``, ``saga worker``)."""
    args = parse_args(argv, prog)
    configure_logging()
    try:
        asyncio.run(main(args))
    except EncryptionConfigError as unusable:
        # A configuration error: say it in one line and exit, no traceback, no retrying.
        log.error("Unusable encryption settings: %s", unusable)
        raise SystemExit(2) from None
    except LLMConfigError as unusable:
        log.error("Unusable LLM settings: %s", unusable)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
