"""schemathesis against the running API with ``--checks all``, every operation (the event
stream aside), bounded.

Its examples, coverage and fuzzing phases send valid and invalid requests and undocumented
methods; every answer must be documented (status, content type, body schema, ``Allow`` on
a 405), every schema-valid request accepted and every schema-invalid one refused. No worker
polls the fuzzing task queue, so the runs it starts stay RUNNING until the module terminates
them (and deletes the schedules it created).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from sagaworks.client.api import ApiSettings
from sagaworks.client.connection import connect
from tests.apiserver import api_server

# A long run (`make test-long`): the API fuzzed from its OpenAPI schema.
pytestmark = pytest.mark.long

TOKEN = "fuzz-" + uuid.uuid4().hex
QUEUE = f"tq-fuzz-{uuid.uuid4()}"
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 5
"""Per operation in the fuzzing phase (the coverage phase sends its own fixed set): with
tests/schemathesis.toml, about a minute and a half on a quiet machine."""


def _clean_up_after_fuzzing(address: str) -> None:
    async def terminate() -> None:
        client = await connect(address=address)
        # Schedules the fuzzer managed to create would go on starting runs.
        async for listed in await client.list_schedules():
            handle = client.get_schedule_handle(listed.id)
            action = (await handle.describe()).schedule.action
            if getattr(action, "task_queue", None) == QUEUE:
                await handle.delete()
        async for execution in client.list_workflows(f"TaskQueue = '{QUEUE}' AND ExecutionStatus = 'Running'"):
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate("fuzzing over")

    # A thread of its own: this runs between tests, outside pytest-asyncio's event loop.
    thread = threading.Thread(target=asyncio.run, args=(terminate(),))
    thread.start()
    thread.join(timeout=120)


@pytest.fixture(scope="module")
def api_url(dev_env: WorkflowEnvironment) -> Iterator[str]:
    address = dev_env.client.service_client.config.target_host
    # A run no worker polls answers its status query only by timing out: soon, here.
    settings = ApiSettings(
        token=TOKEN, task_queue=QUEUE, address=address, database_url=None, status_query_timeout=timedelta(seconds=1)
    )
    with api_server(settings) as api:
        yield api.url
    _clean_up_after_fuzzing(address)


def test_schemathesis_finds_nothing_with_every_check(api_url: str, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "--config-file",
        str(CONFIG),
        "run",
        f"{api_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261202",
        "--continue-on-failure",
        # A stream that lasts as long as the run: tests/test_api.py follows one to its end.
        "--exclude-path-regex",
        "/events$",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--request-timeout",
        "60",
        "--no-color",
        "--output-truncate",
        "false",
    ]
    # In a folder of its own: schemathesis keeps its example database in the working directory.
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path)
    print(done.stdout[-3000:])  # the phases' counts and times, shown with pytest -s
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
