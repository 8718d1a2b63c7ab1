"""Determinism is enforced before workflow code reaches a production worker.

Production workers may run workflow code unsandboxed (worker.py ``WORKFLOW_RUNNERS``), so the
checks the SDK's sandbox makes at run time have to happen here instead: every worker of the
test suite runs sandboxed (tests/conftest.py), and workflows/ is checked statically.
"""

from __future__ import annotations

import ast
import os
import textwrap
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from sagaworks.worker import WORKFLOW_RUNNER_ENV, workflow_runner
from tests.nondeterministic_workflow import CallsOutside
from tests.payloads import wait_for_event

WORKFLOWS_DIR = Path(__file__).resolve().parents[1] / "workflows"

ENGINE_DIR = WORKFLOWS_DIR.parent / "sagaworks"
ENGINE_WORKFLOW_CODE = (
    "_saga.py",
    "_steps.py",
    "_concurrency.py",
    "_pause.py",
    "_models.py",
    "policies.py",
    "_approval.py",
    "_circuit.py",
    # The LangGraph bridge's workflow: unsandboxed always (its docstring says why).
    "langgraph/_workflow.py",
    "langgraph/_graph.py",
    "langgraph/_models.py",
)
"""The engine's modules that run inside workflows (the Saga helper, the step runner...)."""

NOT_WORKFLOW_CODE = {"catalog.py"}
"""The registry of families: read by the CLI and the worker (it lists sample files), never
imported by workflow code."""

BANNED_MODULES = {
    "random",
    "time",
    "uuid",
    "os",
    "secrets",
    "socket",
    "subprocess",
    "threading",
    "multiprocessing",
    "concurrent",
    "sqlite3",
    "sqlalchemy",
    "pathlib",
    "shutil",
    "tempfile",
    "urllib",
    "http",
    "httpx",
    "requests",
}
"""Clocks, randomness, threads and I/O: workflow code uses workflow.now/random/uuid4 and activities."""

BANNED_CALLS = {"open", "input", "breakpoint", "to_thread", "run_in_executor", "now", "utcnow", "today"}
"""Calls by these names (``datetime.now()``, ``asyncio.to_thread(...)``); ``workflow.now()`` is allowed."""


def determinism_violations(source: str, filename: str = "<source>") -> list[str]:
    """What in ``source`` a workflow must not do, one line each (``file:line: what``)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: imports {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in BANNED_MODULES:
            found.append(f"{where}: imports from {node.module}")
        elif isinstance(node, ast.Global):
            found.append(f"{where}: writes module state ({', '.join(node.names)}), shared by runs when unsandboxed")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in BANNED_CALLS:
                found.append(f"{where}: calls {func.id}()")
            elif isinstance(func, ast.Attribute) and func.attr in BANNED_CALLS:
                owner = func.value.id if isinstance(func.value, ast.Name) else None
                if owner != "workflow":
                    found.append(f"{where}: calls {ast.unparse(func)}()")
    return found


def test_workflow_code_makes_no_nondeterministic_call() -> None:
    files = sorted(p for p in WORKFLOWS_DIR.glob("*.py") if p.name not in NOT_WORKFLOW_CODE)
    assert len(files) > 10
    files += [ENGINE_DIR / name for name in ENGINE_WORKFLOW_CODE]
    violations = [v for p in files for v in determinism_violations(p.read_text(), p.name)]
    assert violations == []


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("from datetime import datetime\nstamp = datetime.now()", "calls datetime.now()"),
        ("import random", "imports random"),
        ("from uuid import uuid4", "imports from uuid"),
        ("text = open('x').read()", "calls open()"),
        ("await asyncio.to_thread(work)", "calls asyncio.to_thread()"),
        ("def f():\n    global SEEN\n    SEEN = 1", "writes module state (SEEN)"),
    ],
)
def test_the_static_check_catches(snippet: str, expected: str) -> None:
    [violation] = determinism_violations(textwrap.dedent(snippet))
    assert expected in violation


def test_workflow_time_is_allowed() -> None:
    assert determinism_violations("at = workflow.now()\nkey = workflow.uuid4()\nn = workflow.random().random()") == []


async def _first_task_failure(handle: WorkflowHandle) -> str | None:
    """``type: message`` of the run's first failed workflow task, waiting for it (or its completion)."""
    event = await wait_for_event(
        handle,
        lambda e: (
            e.event_type
            in (EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)
        ),
    )
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return None
    failure = event.workflow_task_failed_event_attributes.failure
    return f"{failure.application_failure_info.type}: {failure.message}"


async def _run_with(client: Client, task_queue: str, runner: str | None, call: str) -> str | None:
    async with Worker(client, task_queue=task_queue, workflows=[CallsOutside], workflow_runner=workflow_runner(runner)):
        handle = await client.start_workflow(CallsOutside.run, call, id=f"calls-{uuid.uuid4()}", task_queue=task_queue)
        try:
            return await _first_task_failure(handle)
        finally:
            if (await handle.describe()).close_time is None:
                await handle.terminate("test over")


def test_the_suite_runs_workers_sandboxed() -> None:
    assert os.environ[WORKFLOW_RUNNER_ENV] == "sandboxed"


@pytest.mark.parametrize("call", ["datetime.now", "random", "open"])
async def test_the_test_suites_runner_fails_a_nondeterministic_call(
    dev_client: Client, task_queue: str, call: str
) -> None:
    # The runner worker.py builds with this suite's setting (tests/conftest.py): sandboxed.
    message = await _run_with(dev_client, task_queue, None, call)
    assert message is not None and message.startswith("RestrictedWorkflowAccessError: Cannot access")


async def test_the_production_runner_would_let_it_through(dev_client: Client, task_queue: str) -> None:
    # Why the suite must run sandboxed: unsandboxed, the clock is read and the run completes.
    assert await _run_with(dev_client, task_queue, "unsandboxed", "datetime.now") is None
